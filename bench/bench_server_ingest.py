"""The ratepad server: sustained durable ingest into PostgreSQL, and press → committed latency.

Everything runs here: a throwaway PostgreSQL cluster (initdb + pg_ctl, fsync on: durable), the
server processes (``ratepad server run``, uvicorn), the agents.

1. Ingest: ``--agents`` concurrent agents (threads, one HTTP connection each, one branch key
   each) post batches of ``--batch`` new ratings to ``--servers`` server instances; a batch
   counts once its commit answer is back. Baselines in the same run, on the same cluster, same
   rows: one connection doing bare ``COPY`` into a plain table with the columns of
   ``ingest_rating``, one transaction per batch; and the same with ``executemany``.
2. Press → committed: a real agent (``ratepad.agent.Agent``) with simulated keypads (sim://,
   eager debouncing) uploads to the server; time from the key press to the server's commit
   answer for that rating. Baseline: one bare INSERT + COMMIT round trip.

    python bench/bench_server_ingest.py [--agents 50] [--batches 8] [--batch 500]
                                        [--servers 2] [--presses 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

import psycopg  # noqa: E402
from pg import Cluster  # noqa: E402
from serverlib import Server, server_env  # noqa: E402

import ratepad.sim  # noqa: E402
from ratepad.agent import Agent, AgentConfig  # noqa: E402
from ratepad.agent.config import UploadConfig  # noqa: E402

T0 = 1_796_000_000_000

SETUP = """
import json, sys
from ratepad_server.cli import main
assert main(["init", "--db", sys.argv[1]]) == 0
assert main(["load-org", sys.argv[2], "--db", sys.argv[1]]) == 0
from ratepad_server.ingest.keys import enroll
from ratepad_server.org.models import Node
keys = [enroll(n)[1] for n in Node.objects.filter(kind="branch").order_by("code")]
print(json.dumps(keys))
"""


def org_file(path: Path, branches: int) -> None:
    lines = ['[[node]]\ncode = "HQ"\nname = "HQ"\n']
    for b in range(branches):
        lines.append(
            f'[[node]]\ncode = "B{b:03d}"\nname = "B{b}"\nparent = "HQ"\nkind = "branch"\n'
        )
        for w in range(2):
            lines.append(
                f'[[window]]\ncode = "B{b:03d}-W{w}"\nbranch = "B{b:03d}"\nname = "W{w}"\n'
                f'keypad = "B{b:03d}-K{w}"\n'
            )
    lines.append('[[node]]\ncode = "LAT"\nname = "latency"\nparent = "HQ"\nkind = "branch"\n')
    for k in range(4):
        lines.append(
            f'[[window]]\ncode = "LAT-W{k}"\nbranch = "LAT"\nname = "W{k}"\nkeypad = "P{k + 1}"\n'
        )
    path.write_text("\n".join(lines))


def ratings(branch: int, first_seq: int, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        seq = first_seq + i
        score = 1 + seq % 5
        out.append({
            "serial": f"B{branch:03d}-K{seq % 2}", "journal_seq": seq, "boot_id": 1,
            "uptime_ms": seq * 1000, "time_ms": T0 + seq * 1000, "time_exact": True,
            "score": score, "key_count": 5, "level_value": [0, 40, 60, 80, 100][score - 1],
            "staff_id": f"S{seq % 7}", "prompt_id": 0, "flags": 1,
        })  # fmt: skip
    return out


def ingest(servers: list[Server], keys: list[str], batches: int, size: int) -> dict[str, Any]:
    bodies = [
        [json.dumps({"ratings": ratings(a, 1 + b * size, size)}).encode() for b in range(batches)]
        for a in range(len(keys))
    ]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(keys) + 1)

    def agent(a: int) -> None:
        srv = servers[a % len(servers)]
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
        headers = {"Authorization": f"Bearer {keys[a]}", "Content-Type": "application/json"}
        start.wait()
        for body in bodies[a]:
            t = time.perf_counter()
            conn.request("POST", "/api/v1/ingest/batch", body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            dt = time.perf_counter() - t
            with lock:
                if resp.status != 200 or not json.loads(answer).get("committed"):
                    errors.append(f"{resp.status} {answer[:200]!r}")
                latencies.append(dt)
        conn.close()

    threads = [threading.Thread(target=agent, args=(a,)) for a in range(len(keys))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    total = len(keys) * batches * size
    return {"rate": total / elapsed, "elapsed": elapsed, "total": total, "errors": errors,
            "batch_latency": latencies}  # fmt: skip


def rows_for_baseline(total: int, size: int) -> list[list[tuple[Any, ...]]]:
    now = datetime.now(UTC)
    out = []
    for b in range(total // size):
        batch = []
        for r in ratings(b % 50, 1 + b * size, size):
            batch.append((
                r["serial"], r["journal_seq"], r["boot_id"], r["uptime_ms"],
                datetime.fromtimestamp(r["time_ms"] / 1000, UTC), r["time_exact"], r["score"],
                r["key_count"], r["level_value"], r["staff_id"], r["prompt_id"], r["flags"],
                1, 1, 1, now,
            ))  # fmt: skip
        out.append(batch)
    return out


COLUMNS = ("serial, journal_seq, boot_id, uptime_ms, time, time_exact, score, key_count,"
           " level_value, staff_id, prompt_id, flags, window_id, branch_id, agent_id,"
           " received_at")  # fmt: skip


def baselines(url: str, total: int, size: int) -> dict[str, float]:
    batches = rows_for_baseline(total, size)
    out = {}
    with psycopg.connect(url) as conn:
        for table in ("bench_copy", "bench_many"):
            conn.execute(
                f"CREATE TABLE {table} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                " serial text, journal_seq bigint, boot_id bigint, uptime_ms bigint,"
                " time timestamptz, time_exact bool, score smallint, key_count smallint,"
                " level_value smallint, staff_id text, prompt_id bigint, flags int,"
                " window_id bigint, branch_id bigint, agent_id bigint, received_at timestamptz,"
                " UNIQUE (serial, journal_seq))"
            )
        conn.commit()
        t = time.perf_counter()
        for batch in batches:
            with conn.cursor() as cur, cur.copy(f"COPY bench_copy ({COLUMNS}) FROM STDIN") as cp:
                for row in batch:
                    cp.write_row(row)
            conn.commit()
        out["copy"] = total / (time.perf_counter() - t)
        t = time.perf_counter()
        sql = f"INSERT INTO bench_many ({COLUMNS}) VALUES ({', '.join(['%s'] * 16)})"
        for batch in batches:
            with conn.cursor() as cur:
                cur.executemany(sql, batch)
            conn.commit()
        out["executemany"] = total / (time.perf_counter() - t)
        t = time.perf_counter()
        n = 200
        for i in range(n):
            conn.execute("INSERT INTO bench_many (serial, journal_seq) VALUES ('x', %s)", [-i - 1])
            conn.commit()
        out["commit_ms"] = (time.perf_counter() - t) / n * 1000
    return out


def press_to_committed(url: str, key: str, presses: int, work: Path) -> list[float]:
    """Seconds from a key press on a sim keypad to the server's commit answer for it."""
    ratepad.sim.reset()
    ids = [f"P{i + 1}" for i in range(4)]
    fast = "debounce=eager&debounce_ms=5&chord_ms=0&repeat_guard_ms=0&thanks_ms=200"
    cfg = AgentConfig(
        devices=tuple(f"sim://{i}?{fast}" for i in ids), db=work / "agent.db", listen=None,
        upload=UploadConfig(url, key, batch=500, max_backoff_s=1.0), batch_ms=2.0,
    )  # fmt: skip
    with Agent(cfg) as agent:
        while not all(w.connected for w in agent.workers):
            time.sleep(0.01)
        time.sleep(0.3)
        assert agent.uploader is not None
        uploader = agent.uploader
        uploader.poll_s = 0.005
        uploader.track_commits = True
        pressed: dict[tuple[str, int], float] = {}
        seqs = dict.fromkeys(ids, 0)
        for n in range(presses):
            i = ids[n % 4]
            seqs[i] += 1
            pressed[(i, seqs[i])] = time.monotonic()
            ratepad.sim.get(i).press(1 + n % 5)
            time.sleep(0.26 / 4)
        end = time.monotonic() + 10
        while len(uploader.committed_at) < presses and time.monotonic() < end:
            time.sleep(0.01)
        done = dict(uploader.committed_at)
    ratepad.sim.reset()
    return [done[k] - t for k, t in pressed.items() if k in done]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--batches", type=int, default=8, help="batches per agent")
    ap.add_argument("--batch", type=int, default=500, help="ratings per batch")
    ap.add_argument("--servers", type=int, default=2, help="server instances")
    ap.add_argument("--threads", type=int, default=8, help="request threads per server")
    ap.add_argument("--presses", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    cluster = Cluster()
    servers: list[Server] = []
    try:
        url = cluster.create_database("bench")
        org = work / "org.toml"
        org_file(org, args.agents)
        out = subprocess.run(
            [sys.executable, "-c", SETUP, url, str(org)], check=True, capture_output=True,
            text=True, env=server_env(), cwd=work,
        )  # fmt: skip
        keys: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
        lat_key, keys = keys[-1], keys[: args.agents]  # "LAT" sorts after "B..."
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'} (fsync on), {os.cpu_count()} cores")
        servers = [Server(url, work, "--threads", str(args.threads)) for _ in range(args.servers)]

        total = args.agents * args.batches * args.batch
        print(
            f"\n1. durable ingest: {args.agents} agents x {args.batches} batches x "
            f"{args.batch} ratings = {total:,} into {args.servers} server instance(s)"
        )
        base = baselines(url, total, args.batch)
        result = ingest(servers, keys, args.batches, args.batch)
        assert not result["errors"], result["errors"][:3]
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT COUNT(*) FROM ingest_rating").fetchone()
            stored = int(row[0]) if row else 0
        assert stored == total, (stored, total)
        lat = result["batch_latency"]
        print(
            f"   ratepad server ingest      {result['rate']:10,.0f} ratings/s "
            f"({result['elapsed']:.1f} s; batch p50 {pct(lat, 50):.0f} ms, "
            f"p99 {pct(lat, 99):.0f} ms)"
        )
        print(
            f"   baseline: bare COPY        {base['copy']:10,.0f} rows/s (1 connection, "
            f"{args.batch}/commit)"
        )
        print(
            f"   baseline: bare executemany {base['executemany']:10,.0f} rows/s (1 connection, "
            f"{args.batch}/commit)"
        )
        print("   target                         10,000 ratings/s")

        if args.presses <= 0:
            return
        print(
            f"\n2. press -> committed at the server ({args.presses} presses, 4 sim keypads, "
            "a real agent)"
        )
        lats = press_to_committed(servers[0].url, lat_key, args.presses, work)
        print(
            f"   p50 {pct(lats, 50):.1f} ms, p99 {pct(lats, 99):.1f} ms, max "
            f"{max(lats) * 1000:.1f} ms ({len(lats)}/{args.presses} committed)"
        )
        print(f"   baseline: one bare INSERT + COMMIT {base['commit_ms']:.2f} ms")
    finally:
        for s in servers:
            s.close()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
