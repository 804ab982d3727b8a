"""Live fan-out: a rating committed through one server instance reaches a live stream opened
on another one (PostgreSQL LISTEN/NOTIFY; in-process on SQLite), filtered by subtree."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from serverlib import Server, Site, call, rating


class Stream:
    """An SSE client: events arrive in ``events``."""

    def __init__(self, server: Server, token: str, node: str, seconds: float = 30) -> None:
        req = urllib.request.Request(
            f"{server.url}api/v1/live?node={node}&seconds={seconds}",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.response = urllib.request.urlopen(req, timeout=seconds + 10)
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(15), "the stream did not open"

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed under it
            self._lines()

    def _lines(self) -> None:
        kind = ""
        for raw in self.response:
            line = raw.decode().rstrip("\n")
            if line.startswith(": live"):
                self.ready.set()
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                self.events.put((kind, json.loads(line[6:])))

    def take(self, n: int, timeout: float = 15) -> list[tuple[str, dict[str, Any]]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            out.append(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
        return out

    def close(self) -> None:
        # shut the socket down under the reader thread (HTTPResponse.close would wait for
        # the reader's pending read, up to the next keep-alive 15 s later)
        sock = self.response.fp.raw._sock  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        self.response.close()


def test_ratings_fan_out_across_instances(site: Site, server: Server) -> None:
    # on PostgreSQL a second, independent instance takes the uploads; SQLite has one instance
    other = site.server() if site.backend == "postgresql" else server
    try:
        bj = Stream(server, site.tokens["bj-manager"], "BJ")
        sh = Stream(server, site.tokens["sh-manager"], "SH")
        status, _ = call(other.url, "/api/v1/ingest/batch", site.keys["BJ-001"], {
            "ratings": [rating("K1", s, 1 + s % 5) for s in range(1, 61)],
            "devices": [{"serial": "K1", "connected": True, "state": "idle", "faults": [],
                         "updated_at_ms": 1_796_000_000_000}],
        })  # fmt: skip
        assert status == 200
        got = bj.take(61)
        ratings = [e for kind, e in got if kind == "rating"]
        assert [r["journal_seq"] for r in ratings] == list(range(1, 61))
        assert {(r["window"], r["branch"]) for r in ratings} == {("BJ-001-W1", "BJ-001")}
        assert [e["serial"] for kind, e in got if kind == "device"] == ["K1"]
        call(other.url, "/api/v1/ingest/batch", site.keys["SH-001"],
             {"ratings": [rating("K4", 1, 3, staff="S101")]})  # fmt: skip
        kind, event = sh.take(1)[0]  # SH sees its own rating, and none of BJ's before it
        assert (kind, event["serial"], event["branch"]) == ("rating", "K4", "SH-001")
        assert bj.events.empty()
        bj.close()
        sh.close()
    finally:
        if other is not server:
            other.close()


def test_a_rolled_back_batch_sends_nothing(site: Site, server: Server) -> None:
    stream = Stream(server, site.tokens["hq-admin"], "HQ")
    bad = {"ratings": [rating("K1", 1)], "prompts": [{"serial": "K1", "prompt_id": 1,
           "state": "nonsense"}]}  # fmt: skip
    assert call(server.url, "/api/v1/ingest/batch", site.keys["BJ-001"], bad)[0] == 422
    assert call(server.url, "/api/v1/ingest/batch", site.keys["BJ-001"],
                {"ratings": [rating("K1", 2)]})[0] == 200  # fmt: skip
    kind, event = stream.take(1)[0]
    assert (kind, event["journal_seq"]) == ("rating", 2)
    stream.close()


def test_overlapping_subscribers_each_get_every_rating(site: Site, server: Server) -> None:
    # two streams of one server process cover BJ-001 (HQ's and BJ's): each sees the rating with
    # the branch's and window's codes; neither's formatting may change what the other reads
    hq = Stream(server, site.tokens["hq-admin"], "HQ")
    bj = Stream(server, site.tokens["bj-manager"], "BJ")
    call(server.url, "/api/v1/ingest/batch", site.keys["BJ-001"],
         {"ratings": [rating("K1", s, 4) for s in (1, 2)]})  # fmt: skip
    for stream in (hq, bj):
        got = [e for kind, e in stream.take(2) if kind == "rating"]
        assert [(e["journal_seq"], e["branch"], e["window"]) for e in got] == [
            (1, "BJ-001", "BJ-001-W1"), (2, "BJ-001", "BJ-001-W1")]  # fmt: skip
    hq.close()
    bj.close()


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_streams_over_the_limit_answer_429(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATEPAD_LIVE_MAX_PER_USER", "2")
    server = site.server()
    try:
        token = site.tokens["bj-manager"]
        first, second = Stream(server, token, "BJ"), Stream(server, token, "BJ")
        status, answer = call(server.url, "/api/v1/live?node=BJ&seconds=1", token)
        assert status == 429 and "2 live streams" in answer["detail"], answer
        other = Stream(server, site.tokens["hq-admin"], "HQ")  # the limit is per user
        first.close()
        for _ in range(100):  # once the server has seen the client go, a stream is free again
            status, answer = call(server.url, "/api/v1/live?node=BJ&seconds=0.5", token)
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200 and ": live" in answer
        second.close()
        other.close()
    finally:
        server.close()


@pytest.mark.parametrize("site", ["sqlite", "postgresql"], indirect=True)
def test_open_streams_and_half_open_sockets_leave_uploads_and_pages_answering(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short run of bench/bench_live_streams.py: 20 live streams and 20 sockets that sent
    half a request line; the login page and an upload still answer; the half-open sockets are
    closed once their request's time is up."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_live_streams import Readers, half_open, page_and_upload, still_open

    monkeypatch.setenv("RATEPAD_LIVE_MAX_PER_USER", "20")
    monkeypatch.setenv("RATEPAD_REQUEST_READ_TIMEOUT", "2")
    server = site.server()
    try:
        readers = Readers(server.port, [site.tokens["hq-admin"]] * 20, ["HQ"] * 20)
        socks = half_open(server.port, 20)
        page_and_upload(server.port, site.keys["BJ-001"], "K1", 1)
        assert readers.stop() == [1] * 20  # each stream received the rating, once
        for _ in range(100):
            if not still_open(socks):
                break
            time.sleep(0.1)
        assert still_open(socks) == 0
        for s in socks:
            s.close()
        page_and_upload(server.port, site.keys["BJ-001"], "K1", 2)
    finally:
        server.close()


def test_requests_share_the_thread_pool_and_an_event_stream_holds_none() -> None:
    """``asgi.SyncViewThreads`` with 2 threads: while an event stream is open, two synchronous
    requests still run at the same time (each waits for the other inside), and a third waits
    for a free thread (never more than 2 at once)."""
    import asyncio
    import threading

    from asgiref.sync import sync_to_async

    from ratepad_server.asgi import SyncViewThreads

    both_inside = threading.Barrier(2, timeout=10)
    inside, most, lock = 0, 0, threading.Lock()
    threads: set[str] = set()

    def view(meet: bool) -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
            threads.add(threading.current_thread().name)
        if meet:
            both_inside.wait()  # BrokenBarrierError if the other cannot run meanwhile
        with lock:
            inside -= 1

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/events":
            await sync_to_async(view)(False)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
            await stream_done.wait()
        else:
            await sync_to_async(view)(scope["path"] == "/meet")
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def request(pool: SyncViewThreads, path: str) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and path == "/events":
                stream_open.set()

        await pool({"type": "http", "path": path}, receive, send)

    async def main() -> None:
        pool = SyncViewThreads(app, threads=2)
        stream = asyncio.create_task(request(pool, "/events"))
        await stream_open.wait()
        await asyncio.gather(*(request(pool, p) for p in ("/meet", "/meet", "/other")))
        stream_done.set()
        await stream

    stream_open, stream_done = asyncio.Event(), asyncio.Event()
    asyncio.run(main())
    assert most == 2
    assert len(threads) == 2
