"""An agent away for a simulated day comes back with 20,000 ratings (plus prompts, staff
sessions and device states) and drains them in order, resuming where an interrupted drain
stopped."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

from serverlib import Server, Site, call

from ratepad.agent.config import UploadConfig
from ratepad.agent.store import DeviceSnapshot, PromptClosed, PromptIssued, RatingItem, Store
from ratepad.agent.upload import Uploader
from ratepad.events import Rating, Status
from ratepad.wire import codec

DAY0 = 1_796_000_000_000
N = 20_000


def offline_day(path: Path) -> list[tuple[str, int]]:
    """A store that collected N ratings over 10 hours without a server; their order."""
    store = Store(path)
    order: list[tuple[str, int]] = []
    seqs = {"K1": 0, "K2": 0}
    batch: list[object] = []
    for i in range(N):
        serial = "K1" if i % 3 else "K2"
        seqs[serial] += 1
        at = DAY0 + i * 1800  # one every 1.8 s: 10 hours
        prompt = i + 1 if i % 4 == 0 else 0
        if prompt:
            batch.append(PromptIssued(serial, prompt, "S001", 30_000, at - 5000))
        batch.append(RatingItem(Rating(
            serial=serial, journal_seq=seqs[serial], boot_id=1, uptime_ms=i * 1800,
            time_ms=at, time_exact=True, score=1 + i % 5, key_count=5,
            staff_id="S001" if i % 2 else "S002", prompt_id=prompt,
            flags=codec.RatingFlags(0 if prompt else codec.RatingFlags.UNPROMPTED),
        )))  # fmt: skip
        if i % 7 == 0:
            batch.append(PromptClosed(serial, 10**6 + i, "timed_out", at))
        order.append((serial, seqs[serial]))
        if len(batch) >= 1000:
            store.apply(batch)  # type: ignore[arg-type]
            batch = []
    status = Status("K1", codec.DeviceState.IDLE, codec.Faults(0), 1, 0, 0, 7, 1, 0, 0, 0, 0,
                    "S001", 5)  # fmt: skip
    batch.append(DeviceSnapshot("K1", "tcp://k1", True, status=status))
    store.apply(batch)  # type: ignore[arg-type]
    later = dataclasses.replace(status, staff_id="S002")  # a staff change: a new session
    store.apply([DeviceSnapshot("K1", "tcp://k1", True, status=later)])
    store.close()
    return order


def server_order(site: Site) -> list[tuple[str, int]]:
    sql = "SELECT serial, journal_seq FROM ingest_rating ORDER BY id"
    if site.cluster is not None:
        import psycopg

        with psycopg.connect(site.db) as conn:
            return [(s, int(q)) for s, q in conn.execute(sql).fetchall()]
    conn2 = sqlite3.connect(site.db.removeprefix("sqlite:///"))
    try:
        return [(s, int(q)) for s, q in conn2.execute(sql).fetchall()]
    finally:
        conn2.close()


def test_a_day_offline_drains_in_order(site: Site, server: Server, tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    order = offline_day(db)
    config = UploadConfig(server.url, site.keys["BJ-001"], batch=500)
    first = Uploader(db, config)
    assert first.pending() > N
    for _ in range(7):  # the agent is stopped in the middle of the drain ...
        first.upload_once()
    first.stop()
    started = time.monotonic()
    second = Uploader(db, config)  # ... and the next one carries on from its cursor
    assert second.drain(timeout=150), second.last_error
    elapsed = time.monotonic() - started
    second.stop()
    assert server_order(site) == order
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["bj-manager"])[1]
    assert summary["n"] == N and summary["prompts"] == N // 4
    assert summary["response_rate"] == 1.0
    _, devices = call(server.url, "/api/v1/devices?node=BJ-001", site.tokens["bj-manager"])
    assert [(d["serial"], d["staff_id"]) for d in devices["devices"]] == [("K1", "S002")]
    print(f"drained {N} ratings in {elapsed:.1f} s ({site.backend})")
