// ratepad managers' web: charts (Apache ECharts, vendored); the live wall is wall.js
"use strict";

function chart(id, option) {
  const el = document.getElementById(id);
  if (!el || typeof echarts === "undefined") return null;
  const c = echarts.init(el);
  c.setOption(Object.assign({ title: { text: el.dataset.title, textStyle: { fontSize: 13 } },
                              tooltip: {}, animation: false }, option));
  return c;
}

function reportCharts() {
  const node = document.getElementById("chart-data");
  if (!node) return;
  const d = JSON.parse(node.textContent);
  chart("chart-series", {
    xAxis: { type: "category", data: d.series.map(s => s.day) },
    yAxis: { type: "value", min: 0, max: 100 },
    series: [{ type: "line", data: d.series.map(s => s.index === null ? null : +s.index.toFixed(1)) }],
  });
  chart("chart-flow", {
    xAxis: { type: "category", data: [...Array(24).keys()] },
    yAxis: { type: "value" },
    series: [{ type: "bar", data: d.flow }],
  });
  const max = Math.max(1, ...d.heatmap.map(c => c[2]));
  chart("chart-heatmap", {
    grid: { top: 40, bottom: 60 },
    xAxis: { type: "category", data: [...Array(24).keys()] },
    yAxis: { type: "category", data: d.weekdays },  // Monday first, in the reader's language
    visualMap: { min: 0, max: max, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
    series: [{ type: "heatmap", data: d.heatmap }],
  });
  const f = d.funnel;
  if (f.p0 !== null) {
    const line = (key, name, dash) => ({ type: "line", name, showSymbol: false, lineStyle: { type: dash },
                                         data: f.limits.map(l => [l.n, l[key]]) });
    chart("chart-funnel", {
      xAxis: { type: "value", name: "n" }, yAxis: { type: "value", min: 0, max: 1 },
      series: [
        { type: "scatter", name: "CSAT", data: f.points.map(p => ({ value: [p.n, p.csat], name: p.code,
          itemStyle: { color: p.outside ? "#c0392b" : "#2f6fb0" },
          label: { show: !!p.outside, formatter: "{b}", position: "right" } })) },
        line("lo95", "95%", "dashed"), line("hi95", "95%", "dashed"),
        line("lo998", "99.8%", "solid"), line("hi998", "99.8%", "solid"),
        { type: "line", name: "p0", showSymbol: false, data: f.limits.map(l => [l.n, f.p0]) },
      ],
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { reportCharts(); });
