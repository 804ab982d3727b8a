"""The window agent: sustained durable ingest and press-to-stored latency.

Each figure is printed next to a baseline measured in the same run on the same disk: a bare
SQLite insert loop with the store's schema and durability settings (WAL, synchronous=FULL).

1. Durable ingest: producer threads (one per keypad) submit ratings to the agent's Writer, which
   batches them (group commit, at most 500 per transaction), commits, then confirms each one
   (a counting stand-in for the keypad's ACK). Baselines: one commit per rating; executemany
   with 500 rows per commit. Also: the backlog of simulated keypads (real firmware core, real
   link session over sim://) drained through the whole agent.
2. Press-to-stored latency: a key press on a simulated keypad (sim://) until the rating is
   committed and published by the agent, with eager debouncing and no chord window (so it
   measures the link, the host and the store, not the firmware's deliberate decision delay);
   then the same with the default key settings for information. Baseline: the latency of one
   bare insert + commit.

    python bench/bench_agent.py [--ratings 50000] [--presses 200] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ratepad
import ratepad.sim
from ratepad.agent import Agent, AgentConfig, Store
from ratepad.agent.levels import Level
from ratepad.agent.store import RatingItem, StoredRating
from ratepad.agent.store.schema import MIGRATIONS, statements
from ratepad.agent.store.writes import INSERT_RATING as INSERT
from ratepad.agent.writer import Writer
from ratepad.events import Rating
from ratepad.wire import codec

ROOT = Path(__file__).resolve().parent


def make_rating(serial: str, seq: int) -> Rating:
    return Rating(
        serial, seq, 1, seq * 1000, 1_800_000_000_000 + seq, True, 1 + seq % 5, 5, "S001", 0,
        codec.RatingFlags.UNPROMPTED,
    )  # fmt: skip


def row_of(r: Rating) -> list[Any]:
    return StoredRating.row_of(r, Level("satisfied", 80), 0)


def bare_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for _, script in MIGRATIONS:
        for statement in statements(script):  # a trigger's body holds ';' of its own
            conn.execute(statement)
    return conn


def baseline_per_commit(path: Path, n: int) -> tuple[float, list[float]]:
    """ratings/s and per-insert latencies (s) of insert + commit, one rating per transaction."""
    conn = bare_db(path)
    rows = [row_of(make_rating("B1", i)) for i in range(1, n + 1)]
    lat = []
    t0 = time.perf_counter()
    for row in rows:
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, row)
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt, lat


def baseline_batched(path: Path, n: int, batch: int = 500) -> float:
    conn = bare_db(path)
    rows = [row_of(make_rating("B1", i)) for i in range(1, n + 1)]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, rows[i : i + batch])
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


class CountingAck:
    def __init__(self) -> None:
        self.n = 0
        self.done = threading.Event()
        self.target = 0
        self.lock = threading.Lock()

    def confirm(self, r: Rating) -> None:
        with self.lock:
            self.n += 1
            if self.n >= self.target:
                self.done.set()


def agent_ingest(path: Path, n: int, producers: int = 3) -> tuple[float, float]:
    """ratings/s through Writer (submit -> batch -> commit -> confirm), mean batch size."""
    store = Store(path)
    writer = Writer(store, batch_max=500, batch_ms=20)
    ack = CountingAck()
    ack.target = n
    per = n // producers
    items = [
        [RatingItem(make_rating(f"K{p}", s), ack) for s in range(1, per + 1)]
        for p in range(producers)
    ]
    ack.target = per * producers
    writer.start()
    t0 = time.perf_counter()
    threads = [
        threading.Thread(target=lambda xs=xs: [writer.submit(x) for x in xs]) for xs in items
    ]
    for t in threads:
        t.start()
    ack.done.wait(600)
    dt = time.perf_counter() - t0
    writer.stop()
    assert store.count() == ack.target
    store.close()
    return ack.target / dt, ack.target / max(writer.batches, 1)


def backlog_drain(path: Path, keypads: int, per_keypad: int) -> float:
    """Simulated keypads with a journalled backlog; ratings/s until all stored and ACKed."""
    ratepad.sim.reset()
    ids = [f"L{i + 1}" for i in range(keypads)]
    for i in ids:
        kp = ratepad.sim.get(i, {"capacity": 20000})
        with kp._cond:  # the keypad's own thread runs too
            for s in range(per_keypad):
                kp.keypad.core.journal.append(1 + s % 5, 5, 1, 0, b"S001", s, None)
    cfg = AgentConfig(devices=tuple(f"sim://{i}" for i in ids), db=path, listen=None)
    t0 = time.perf_counter()
    with Agent(cfg) as agent:
        while True:
            if all(ratepad.sim.get(i).keypad.core.journal.unacked() == 0 for i in ids):
                break
            time.sleep(0.005)
        dt = time.perf_counter() - t0
        assert agent.store.count() == keypads * per_keypad
    ratepad.sim.reset()
    return keypads * per_keypad / dt


def press_latency(path: Path, presses: int, settings: str, keypads: int = 4) -> list[float]:
    """Seconds from press() to the rating stored and published, over ``keypads`` sim keypads."""
    ratepad.sim.reset()
    ids = [f"P{i + 1}" for i in range(keypads)]
    cfg = AgentConfig(devices=tuple(f"sim://{i}?{settings}" for i in ids), db=path, listen=None)
    arrived: dict[tuple[str, int], float] = {}
    with Agent(cfg) as agent:
        while not all(w.connected for w in agent.workers):
            time.sleep(0.01)
        time.sleep(0.3)
        sub = agent.hub.subscribe()

        def listen() -> None:
            for e in sub:  # stamps each rating as it is published (after its commit)
                if e.kind == "rating":
                    arrived[(e.data["serial"], e.data["journal_seq"])] = time.perf_counter()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        pressed: dict[tuple[str, int], float] = {}
        seqs = dict.fromkeys(ids, 0)
        for n in range(presses):
            i = ids[n % keypads]
            seqs[i] += 1
            pressed[(i, seqs[i])] = time.perf_counter()
            ratepad.sim.get(i).press(1 + n % 5)
            time.sleep(0.26 / keypads)  # each keypad: past its 200 ms thank-you
        end = time.monotonic() + 5
        while len(arrived) < presses and time.monotonic() < end:
            time.sleep(0.01)
        sub.close()
    ratepad.sim.reset()
    return [arrived[k] - t for k, t in pressed.items() if k in arrived]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=50_000, help="for the ingest runs")
    ap.add_argument("--presses", type=int, default=200, help="for the latency runs")
    ap.add_argument("--dir", type=Path, default=ROOT / "out", help="where the stores go")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-agent-", dir=args.dir))
    n = args.ratings
    try:
        print(f"SQLite {sqlite3.sqlite_version}, WAL + synchronous=FULL, stores in {args.dir}")
        print(f"\n1. durable ingest ({n:,} ratings, 3 producer threads)")
        per_commit, commit_lat = baseline_per_commit(work / "b1.db", min(n, 2000))
        batched = baseline_batched(work / "b2.db", n)
        rate, mean_batch = agent_ingest(work / "agent.db", n)
        drain = backlog_drain(work / "drain.db", 3, 2000)
        w = 46
        print(
            f"   {'baseline: bare insert, 1 commit per rating':<{w}} {per_commit:9,.0f} ratings/s"
        )
        print(f"   {'baseline: bare executemany, 500 per commit':<{w}} {batched:9,.0f} ratings/s")
        verdict = "met" if rate >= 5000 else "MISSED"
        print(
            f"   {'agent Writer: queue, batch, commit, then ACK':<{w}} {rate:9,.0f} ratings/s"
            f"  target >= 5,000/s: {verdict}\n"
            f"   {'':<{w}} (mean batch {mean_batch:.0f}; {rate / batched:.2f}x the batched"
            f" baseline's rate, {rate / per_commit:.1f}x one-commit-each)"
        )
        print(
            f"   {'end to end: 3 sim keypads, 6,000 backlog':<{w}} {drain:9,.0f} ratings/s"
            "  (link + session + agent; 8 ratings in flight per keypad)"
        )
        print(f"\n2. press-to-stored latency ({args.presses} presses over 4 sim keypads)")
        fast = "debounce=eager&debounce_ms=5&chord_ms=0&repeat_guard_ms=0&thanks_ms=200"
        lat = press_latency(work / "lat.db", args.presses, fast)
        default = press_latency(
            work / "lat2.db", max(40, args.presses // 5), "thanks_ms=200&repeat_guard_ms=0"
        )

        def line(label: str, xs: list[float]) -> str:
            return (
                f"   {label:<{w}} p50 {pct(xs, 50):6.2f} ms  p99 {pct(xs, 99):6.2f} ms"
                f"  max {max(xs) * 1000:6.2f} ms  n={len(xs)}"
            )

        print(line("baseline: bare insert + commit", commit_lat))
        verdict = "met" if pct(lat, 99) <= 20 else "MISSED"
        print(
            line("press -> stored (eager debounce, no chord)", lat)
            + f"  target p99 <= 20 ms: {verdict}"
        )
        print(line("press -> stored (default: defer 20, chord 60)", default))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
