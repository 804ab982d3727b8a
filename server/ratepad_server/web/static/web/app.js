// ratepad managers' web: charts (Apache ECharts, vendored) and the live wall (server-sent events)
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
    yAxis: { type: "category", data: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] },
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

function liveWall() {
  const wall = document.getElementById("wall");
  if (!wall) return;
  const status = document.getElementById("live-status");
  const latest = document.getElementById("latest");
  const alerts = document.getElementById("open-alerts");
  const names = JSON.parse(document.getElementById("staff-names").textContent);
  const es = new EventSource(wall.dataset.events);
  es.onopen = () => { status.textContent = "live"; status.className = "on"; };
  es.onerror = () => { status.textContent = "reconnecting"; status.className = "off"; };
  es.addEventListener("rating", (e) => {
    const r = JSON.parse(e.data);
    const row = latest.insertRow(1);
    row.className = "new";
    const t = new Date(r.time);
    const clock = t.toLocaleTimeString("zh-CN", { timeZone: window.TIME_ZONE, hour12: false });
    [clock, r.window || "", r.staff_id, r.score, (r.flags || []).join(" ")]
      .forEach((v, i) => { const c = row.insertCell(); c.textContent = v; if (i === 3) c.className = "score s" + v; });
    while (latest.rows.length > 21) latest.deleteRow(-1);
    const tile = document.getElementById("tile-" + r.window);
    if (tile) {
      tile.querySelector(".last").textContent = r.score + " · " + clock;
      tile.classList.add("flash");
      setTimeout(() => tile.classList.remove("flash"), 1500);
    }
  });
  es.addEventListener("device", (e) => {
    const d = JSON.parse(e.data);
    const tile = document.getElementById("tile-" + d.window);
    if (!tile) return;
    const state = !d.connected ? "offline" : (d.state === "prompted" ? "prompted" : "online");
    tile.classList.remove("online", "prompted", "offline");
    tile.classList.add(state);
    tile.querySelector(".state").textContent = state;
    tile.querySelector(".staff").textContent = names[d.staff_id] || d.staff_id || "–";
  });
  es.addEventListener("alert", (e) => {
    const a = JSON.parse(e.data);
    const li = document.createElement("li");
    li.className = "open";
    const link = document.createElement("a");
    link.href = window.ALERT_URL + a.id + "/";
    link.textContent = a.summary;
    li.appendChild(link);
    alerts.insertBefore(li, alerts.firstChild);
  });
}

document.addEventListener("DOMContentLoaded", () => { reportCharts(); liveWall(); });
