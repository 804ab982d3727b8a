// ratepad managers' web: the overview's 30-day trend (Apache ECharts, vendored; kitChart and the
// kit's theme are app.js's)
"use strict";

function overviewTrend() {
  const el = document.getElementById("chart-trend");
  const node = document.getElementById("overview-data");
  if (!el || !node || typeof echarts === "undefined") return;
  const d = JSON.parse(node.textContent);
  const days = d.series.map(s => s.day.slice(5));
  const c = kitChart(el);
  c.setOption({
    animation: false,
    title: { text: el.dataset.title },
    tooltip: { trigger: "axis" },
    legend: { top: narrow() ? 28 : 6, right: 8 },
    grid: { left: 40, right: 40, top: narrow() ? 60 : 44, bottom: 30 },
    xAxis: { type: "category", data: days },
    yAxis: [{ type: "value", min: 0, max: 100 }, { type: "value", minInterval: 1 }],
    series: [
      { type: "line", name: el.dataset.index, data: d.series.map(s => s.index === null ? null : +s.index.toFixed(1)) },
      { type: "line", name: el.dataset.csat, data: d.series.map(s => s.csat === null ? null : +(s.csat * 100).toFixed(1)) },
      { type: "bar", name: el.dataset.n, yAxisIndex: 1, data: d.series.map(s => s.n), itemStyle: { opacity: 0.35 } },
    ],
  });
}

document.addEventListener("DOMContentLoaded", overviewTrend);
