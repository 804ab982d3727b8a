// The live wall (web/wall.py): server-sent events patch the tiles and the latest ratings as they
// arrive; today's figures and the alert ticker are re-rendered by the server (/live/<node>/state)
// after new ratings or alerts, when the stream reconnects, and every minute. The page never
// reloads itself: a lost stream shows "reconnecting…" and is opened again with a backoff.
"use strict";

(function () {
  const page = document.getElementById("wall-page");
  if (!page) return;
  const words = JSON.parse(document.getElementById("wall-words").textContent);
  const status = document.getElementById("live-status");
  const latest = document.getElementById("latest");
  const kiosk = page.classList.contains("kiosk");
  const zone = page.dataset.timeZone;
  const REFRESH_MS = 60000; // a keypad that falls silent turns offline without an event
  const MAX_BACKOFF_MS = 30000;

  // -- times: the format of the server's ``wall_time`` (today: 14:03:05; earlier: 12-06 14:03)
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function local(date) {
    const p = {};
    parts.formatToParts(date).forEach((x) => { p[x.type] = x.value; });
    return p;
  }
  function wallTime(iso) {
    const t = local(new Date(iso));
    const now = local(new Date());
    if (t.year === now.year && t.month === now.month && t.day === now.day) {
      return `${t.hour}:${t.minute}:${t.second}`;
    }
    return `${t.month}-${t.day} ${t.hour}:${t.minute}`;
  }
  function timeElement(iso) {
    const el = document.createElement("time");
    el.dateTime = iso;
    el.textContent = wallTime(iso);
    return el;
  }

  // -- the connection's state, shown
  function show(state) {
    if (state === "reconnecting" && status.dataset.state !== "reconnecting") {
      status.dataset.drops = String(Number(status.dataset.drops || 0) + 1); // seen by the tests
    }
    status.dataset.state = state;
    status.textContent = words.link[state];
    status.className = state === "live" ? "on" : "off";
  }

  // -- the server's rendering of the dynamic parts
  const MIN_GAP_MS = 5000; // a busy hall: today's figures at most every 5 s per screen
  let pending = null;
  let pendingAll = false;
  let lastLoad = 0;
  function refresh(all) {
    pendingAll = pendingAll || all;
    if (pending !== null) return;
    // a burst of events: one request
    const wait = all ? 300 : Math.max(800, lastLoad + MIN_GAP_MS - Date.now());
    pending = setTimeout(load, wait);
  }
  async function load() {
    const all = pendingAll;
    pending = null;
    pendingAll = false;
    lastLoad = Date.now();
    const url = page.dataset.state + (all ? "" : (page.dataset.state.includes("?") ? "&" : "?") + "only=today");
    let answer;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      answer = await response.json();
    } catch (e) {
      // the server is unreachable: the stream may hang on a dead connection without an error
      // (a network drop sends no reset), so it is opened again too
      reopen();
      return;
    }
    document.getElementById("wall-kpis").innerHTML = answer.kpis;
    if (answer.tiles !== undefined) {
      document.getElementById("wall-tiles").innerHTML = answer.tiles;
      document.getElementById("open-alerts").innerHTML = answer.ticker.trim(); // :empty says so
      latest.innerHTML = answer.latest;
    }
    fit();
  }

  // -- events
  function tileOf(code) {
    return code ? document.getElementById("tile-" + code) : null;
  }
  function setStaff(tile, name, id) {
    if (name || id) tile.querySelector(".staff").textContent = name || id;
  }
  function onRating(r) {
    const tile = tileOf(r.window);
    if (tile) {
      const last = tile.querySelector(".last");
      const score = document.createElement("b");
      score.className = "score s" + r.score;
      score.textContent = r.score;
      const rated = r.staff_name || r.staff_id;
      if (rated) {
        const who = document.createElement("span");
        who.className = "rated";
        who.textContent = rated;
        last.replaceChildren(score, " · ", timeElement(r.time), " · ", who);
      } else {
        last.replaceChildren(score, " · ", timeElement(r.time));
      }
      // who is at the window: the keypad's login (device events), else whom the ratings are for
      if (tile.querySelector(".staff").textContent === "–") setStaff(tile, r.staff_name, r.staff_id);
      tile.classList.add("flash");
      setTimeout(() => tile.classList.remove("flash"), 1500);
    }
    const row = latest.insertRow(1);
    row.className = "new";
    const grouped = document.querySelector("#wall-tiles .branch-name") !== null;
    const where = tile ? (grouped ? tile.dataset.branch + " · " : "") + tile.dataset.name : "";
    const cells = [timeElement(r.time), where, r.staff_name || r.staff_id || "–", String(r.score),
                   (r.flags || []).join(" ")];
    cells.forEach((v, i) => {
      const c = row.insertCell();
      if (typeof v === "string") c.textContent = v; else c.appendChild(v);
      if (i === 3) c.className = "score s" + r.score;
    });
    const max = Number(latest.dataset.max) || 20;
    while (latest.rows.length > max + 1) latest.deleteRow(-1);
    refresh(false);
  }
  function onDevice(d) {
    const tile = tileOf(d.window);
    if (!tile) return;
    const state = !d.connected ? "offline" : (d.state === "prompted" ? "prompted" : "online");
    tile.classList.remove("online", "prompted", "offline");
    tile.classList.add(state);
    tile.querySelector(".state").textContent = words.states[state];
    setStaff(tile, d.staff_name, d.staff_id);
    const seen = tile.querySelector(".seen");
    if (state === "offline") seen.replaceChildren(words.last_seen + " ", timeElement(d.time));
    else seen.replaceChildren();
  }

  // -- the stream, and opening it again
  let source = null;
  let backoff = 1000;
  let retry = null;
  let broken = false;
  function connect() {
    if (source !== null && source.readyState !== EventSource.CLOSED) return;
    if (retry !== null) return;
    source = new EventSource(page.dataset.events);
    source.onopen = () => {
      show("live");
      backoff = 1000;
      if (broken) refresh(true); // what happened while the stream was away
      broken = false;
    };
    source.onerror = () => {
      broken = true;
      show("reconnecting");
      // the browser retries a dropped stream itself; a refused one (the server down, an error
      // status) is closed for good: open a new one after a backoff
      if (source.readyState === EventSource.CLOSED) later();
    };
    const handle = (fn) => (e) => { try { fn(JSON.parse(e.data)); } catch (err) { /* a bad row */ } };
    source.addEventListener("rating", handle(onRating));
    source.addEventListener("device", handle(onDevice));
    source.addEventListener("alert", handle(() => refresh(true)));
  }

  function later() {
    if (retry !== null) return;
    retry = setTimeout(() => { retry = null; connect(); }, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
  function reopen() {
    broken = true;
    show("reconnecting");
    if (source !== null) source.close();
    later();
  }

  // -- the kiosk fills the screen: a few tiles grow, many shrink until they fit (bounded steps)
  function fit() {
    if (!kiosk) return;
    const area = document.getElementById("wall-tiles");
    const fits = () => area.scrollHeight <= area.clientHeight + 1 && area.scrollWidth <= area.clientWidth + 1;
    let scale = 1;
    const set = () => area.style.setProperty("--fit", scale.toFixed(3));
    set();
    for (let i = 0; i < 8 && fits(); i++) {
      scale *= 1.1;
      set();
    }
    for (let i = 0; i < 32 && !fits(); i++) {
      scale *= 0.92;
      set();
    }
  }

  // -- the clock
  const clock = document.getElementById("wall-clock");
  function tick() {
    const t = local(new Date());
    clock.textContent = `${t.hour}:${t.minute}:${t.second}`;
  }

  tick();
  setInterval(tick, 1000);
  fit();
  window.addEventListener("resize", fit);
  show("connecting");
  connect();
  setInterval(() => refresh(true), REFRESH_MS);
})();
