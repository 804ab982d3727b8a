// ratepad managers' web: charts (Apache ECharts, vendored), drawn in the UI kit's colours and
// fonts and resized with their box (a phone's width, a rotated screen); the live wall is wall.js
"use strict";

// the kit's palette and type (Bootstrap's CSS variables), read once from the page
function kitTheme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => (css.getPropertyValue(name) || "").trim() || fallback;
  const text = v("--bs-body-color", "#212529");
  const muted = v("--bs-secondary-color", "#6c757d");
  const line = v("--bs-border-color", "#dee2e6");
  return {
    color: [v("--bs-primary", "#0d6efd"), v("--bs-success", "#198754"), v("--bs-warning", "#ffc107"),
            v("--bs-info", "#0dcaf0"), v("--bs-danger", "#dc3545"), v("--bs-secondary", "#6c757d")],
    textStyle: { fontFamily: v("--bs-body-font-family", "sans-serif"), color: text },
    title: { textStyle: { color: text, fontSize: 14, fontWeight: 600 }, left: 8, top: 6 },
    legend: { textStyle: { color: muted } },
    categoryAxis: { axisLine: { lineStyle: { color: line } }, axisLabel: { color: muted }, splitLine: { show: false } },
    valueAxis: { axisLine: { show: false }, axisLabel: { color: muted }, splitLine: { lineStyle: { color: line } } },
    danger: v("--bs-danger", "#dc3545"),
  };
}
const KIT = kitTheme();
if (typeof echarts !== "undefined") echarts.registerTheme("kit", KIT);

// every chart of the page follows its box: the window's resize, and a box that changes size
// by itself (a phone's address bar, a card that wraps)
const charts = [];
function kitChart(el) {
  const c = echarts.init(el, "kit");
  charts.push(c);
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => c.resize()).observe(el);
  return c;
}
window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
const narrow = () => window.matchMedia("(max-width: 575.98px)").matches;

function chart(id, option) {
  const el = document.getElementById(id);
  if (!el || typeof echarts === "undefined") return null;
  const c = kitChart(el);
  c.setOption(Object.assign({ title: { text: el.dataset.title }, tooltip: {}, animation: false,
                              grid: { left: 44, right: narrow() ? 12 : 24, top: 44, bottom: 30 } }, option));
  return c;
}

function reportCharts() {
  const node = document.getElementById("chart-data");
  if (!node) return;
  const d = JSON.parse(node.textContent);
  chart("chart-series", {
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: d.series.map(s => s.day) },
    yAxis: { type: "value", min: 0, max: 100 },
    series: [{ type: "line", data: d.series.map(s => s.index === null ? null : +s.index.toFixed(1)) }],
  });
  chart("chart-flow", {
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: [...Array(24).keys()] },
    yAxis: { type: "value" },
    series: [{ type: "bar", data: d.flow }],
  });
  const max = Math.max(1, ...d.heatmap.map(c => c[2]));
  chart("chart-heatmap", {
    grid: { left: 44, right: 12, top: 44, bottom: 70 },
    xAxis: { type: "category", data: [...Array(24).keys()] },
    yAxis: { type: "category", data: d.weekdays },  // Monday first, in the reader's language
    visualMap: { min: 0, max: max, calculable: true, orient: "horizontal", left: "center", bottom: 0,
                 itemWidth: 12, itemHeight: narrow() ? 120 : 200,
                 inRange: { color: ["#f8f9fa", KIT.color[0]] } },
    series: [{ type: "heatmap", data: d.heatmap }],
  });
  const f = d.funnel;
  if (f.p0 !== null) {
    const line = (key, name, dash, color) => ({ type: "line", name, showSymbol: false, color,
                                                lineStyle: { type: dash, width: 1 }, data: f.limits.map(l => [l.n, l[key]]) });
    chart("chart-funnel", {
      xAxis: { type: "value", name: "n" }, yAxis: { type: "value", min: 0, max: 1 },
      series: [
        { type: "scatter", name: "CSAT", data: f.points.map(p => ({ value: [p.n, p.csat], name: p.code,
          itemStyle: { color: p.outside ? KIT.danger : KIT.color[0] },
          label: { show: !!p.outside, formatter: "{b}", position: "right" } })) },
        line("lo95", "95%", "dashed", KIT.color[5]), line("hi95", "95%", "dashed", KIT.color[5]),
        line("lo998", "99.8%", "solid", KIT.danger), line("hi998", "99.8%", "solid", KIT.danger),
        { type: "line", name: "p0", showSymbol: false, color: KIT.color[1], data: f.limits.map(l => [l.n, f.p0]) },
      ],
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { reportCharts(); });
