// The survey report's charts (Apache ECharts, vendored by the web app): per dimension the gap
// (perception - expectation) with its interval, and the zone of tolerance (adequate .. desired)
// with the perception inside or outside it; the importance-performance grid with its mean lines.
"use strict";

(function () {
  const node = document.getElementById("survey-chart-data");
  if (!node || typeof echarts === "undefined") return;
  const d = JSON.parse(node.textContent);
  const L = d.labels;
  const init = (id, option) => {
    const el = document.getElementById(id);
    if (!el) return;
    // the web's kitChart (app.js): the UI kit's colours, resized with its box
    const chart = typeof kitChart === "function" ? kitChart(el) : echarts.init(el);
    chart.setOption(Object.assign({
      title: { text: el.dataset.title, textStyle: { fontSize: 13 } }, tooltip: {}, animation: false,
    }, option));
  };
  const names = d.dimensions.map((x) => x.name);
  const round = (x) => (x === null || x === undefined ? null : +x.toFixed(3));
  init("chart-gaps", {
    legend: { bottom: 0 },
    grid: { top: 50, bottom: 60 },
    xAxis: { type: "category", data: names },
    yAxis: [{ type: "value", name: L.gap }, { type: "value", name: L.perception }],
    series: [
      { type: "bar", name: L.gap, data: d.dimensions.map((x) => round(x.gap)) },
      { type: "custom", name: "95%", renderItem: (params, api) => {
          const top = api.coord([api.value(0), api.value(2)]);
          const bottom = api.coord([api.value(0), api.value(1)]);
          return { type: "line", shape: { x1: top[0], y1: top[1], x2: bottom[0], y2: bottom[1] },
                   style: { stroke: "#333", lineWidth: 2 } };
        },
        data: d.dimensions.map((x, i) => [i, round(x.lo), round(x.hi)]) },
      { type: "bar", name: L.zone, yAxisIndex: 1, stack: "zone", itemStyle: { color: "transparent" },
        data: d.dimensions.map((x) => round(x.adequate)), tooltip: { show: false } },
      { type: "bar", name: L.zone, yAxisIndex: 1, stack: "zone", itemStyle: { color: "rgba(47,111,176,.25)" },
        data: d.dimensions.map((x) => (x.desired === undefined || x.adequate === undefined ? null
                                       : round(x.desired - x.adequate))) },
      { type: "scatter", name: L.perception, yAxisIndex: 1, symbolSize: 12,
        data: d.dimensions.map((x) => round(x.perception)) },
    ],
  });
  if (d.ipa) {
    init("chart-ipa", {
      xAxis: { type: "value", name: L.performance, scale: true },
      yAxis: { type: "value", name: L.importance, scale: true },
      series: [{
        type: "scatter", symbolSize: 12, label: { show: true, position: "right", formatter: (p) => p.name },
        data: d.ipa.points.map((p) => ({ name: p.name, value: [round(p.x), round(p.y)] })),
        markLine: { silent: true, symbol: "none", lineStyle: { type: "dashed" },
                    data: [{ xAxis: round(d.ipa.x) }, { yAxis: round(d.ipa.y) }] },
      }],
    });
  }
})();
