"""The live wall's event stream: a rating uploaded to one server instance reaches a browser
session connected to another instance within 2 s (PostgreSQL: two server processes on one
database, LISTEN/NOTIFY; SQLite: one instance), with the alert it raised and the device state;
a user of another subtree gets nothing of it."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from typing import Any

from serverlib import Server, Site
from webclient import WebClient, logged_in
from webdata import rating, upload


def _listen(client: WebClient, path: str) -> queue.Queue[tuple[float, str, dict[str, Any]]]:
    events: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
    ready = threading.Event()

    def run() -> None:
        req = urllib.request.Request(client.base + path)
        with client.opener.open(req, timeout=30) as resp:
            kind = ""
            for raw in resp:
                line = raw.decode().rstrip("\n")
                if line.startswith(": live"):
                    ready.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.put((time.monotonic(), kind, json.loads(line[6:])))

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10), "the event stream did not open"
    return events


def _collect(events: queue.Queue[tuple[float, str, dict[str, Any]]], kinds: set[str],
             timeout: float) -> dict[str, tuple[float, dict[str, Any]]]:  # fmt: skip
    """The first event of each kind, in whatever order they come."""
    got: dict[str, tuple[float, dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout
    while set(got) < kinds:
        left = deadline - time.monotonic()
        assert left > 0, f"no {sorted(kinds - set(got))} event within {timeout} s"
        try:
            at, k, data = events.get(timeout=left)
        except queue.Empty:
            continue
        got.setdefault(k, (at, data))
    return got


def test_a_press_reaches_the_wall_on_another_instance(site: Site, server: Server) -> None:
    other = site.server() if site.backend == "postgresql" else None
    try:
        wall_server = other or server
        admin = logged_in(server.url, "hq-admin")
        admin.post("/rules/", {"name": "bad", "node": "BJ", "kind": "low_rating", "level": "1"})
        manager = logged_in(wall_server.url, "bj-manager")
        status, page = manager.get("/live/BJ-001/")
        assert status == 200 and b'id="tile-BJ-001-W1"' in page
        events = _listen(manager, "/live/BJ-001/events?seconds=30")
        outsider = _listen(logged_in(wall_server.url, "sh-manager"), "/live/SH/events?seconds=30")
        sent = time.monotonic()
        now_ms = int(time.time() * 1000)
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1, ago_s=1)],
               devices=[{"serial": "K1", "connected": True, "state": "prompted",
                         "staff_id": "S001", "updated_at_ms": now_ms}])  # fmt: skip
        got = _collect(events, {"rating", "device", "alert"}, 2.0)
        at, r = got["rating"]
        assert at - sent <= 2.0
        assert (r["window"], r["branch"], r["score"], r["staff_id"]) == (
            "BJ-001-W1",
            "BJ-001",
            1,
            "S001",
        )
        d = got["device"][1]
        assert d["state"] == "prompted" and d["window"] == "BJ-001-W1"
        a = got["alert"][1]
        assert a["kind"] == "low_rating" and a["window"] == "BJ-001-W1"
        assert outsider.empty()
        # the wall page, reloaded, shows the state the events carried
        status, page = manager.get("/live/BJ-001/")
        text = page.decode()
        assert 'class="tile prompted" id="tile-BJ-001-W1"' in text and "王小明" in text
    finally:
        if other is not None:
            other.close()
