// The ratepad bridge example page: fetch + WebSocket, no libraries.
// Token: from the URL fragment (#token=..., the sandbox prints such a URL) or typed in.
// Bridge: the page's own origin, or ?bridge=http://127.0.0.1:8765 when served elsewhere (that
// origin must then be in the agent's [bridge] allow_origins).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
$("bridge").value = params.get("bridge") || location.origin;
$("token").value = fragment.get("token") || "";

let ws = null;
let refs = 0;

function log(text) {
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("events").prepend(li);
}

function show(text, state) {
  const answer = $("answer");
  answer.textContent = text;
  answer.className = "answer " + state;
}

async function api(method, path, body) {
  const response = await fetch($("bridge").value + path, {
    method,
    headers: {
      "Authorization": "Bearer " + $("token").value,
      "Content-Type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error + ": " + data.message);
  return data;
}

async function connect() {
  try {
    const { devices } = await api("GET", "/v1/devices");
    const select = $("keypad");
    select.replaceChildren();
    for (const d of devices) {
      const option = document.createElement("option");
      option.value = d.serial || "";
      option.textContent = d.serial + (d.connected ? "" : " (not connected)");
      select.append(option);
    }
    const { ticket } = await api("POST", "/v1/tickets", { purpose: "ws" });
    const url = new URL("/v1/ws", $("bridge").value);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    ws = new WebSocket(url);
    ws.onopen = () => {
      $("link").textContent = "connected";
      $("link").className = "badge on";
      $("prompt").disabled = false;
      log("WebSocket open");
    };
    ws.onclose = () => {
      $("link").textContent = "not connected";
      $("link").className = "badge off";
      $("prompt").disabled = true;
      log("WebSocket closed");
    };
    ws.onmessage = (message) => receive(JSON.parse(message.data));
  } catch (error) {
    $("link").textContent = "refused";
    show("cannot reach the bridge: " + error.message, "failed");
    log("error: " + error.message);
  }
}

function receive(msg) {
  if (msg.type === "prompt_outcome") {
    if (msg.state === "answered") {
      const r = msg.rating;
      show(`score ${r.score} of ${r.key_count} (${r.level}) from ${r.serial}`, "answered");
    } else {
      show(`no answer: ${msg.state}`, "failed");
    }
    $("prompt").disabled = false;
  } else if (msg.type === "error") {
    show(`${msg.error}: ${msg.message}`, "failed");
    $("prompt").disabled = false;
  }
  if (msg.type === "rating") log(`rating ${msg.data.score} on ${msg.data.serial}`);
  else if (msg.type === "prompt_outcome") log(`prompt ${msg.prompt_id} on ${msg.serial}: ${msg.state}`);
  else if (msg.type === "connected" || msg.type === "lost") log(`${msg.data.serial} ${msg.type}`);
  else if (msg.type === "error") log(`error ${msg.error}: ${msg.message}`);
}

function prompt() {
  const ref = "p" + ++refs;
  ws.send(JSON.stringify({
    type: "prompt",
    ref,
    serial: $("keypad").value,
    staff: $("staff").value,
    timeout: Number($("timeout").value),
  }));
  $("prompt").disabled = true;
  show("waiting for the customer…", "waiting");
}

$("connect").addEventListener("click", connect);
$("prompt").addEventListener("click", prompt);
if ($("token").value) connect();
