"""The ratepad server with many open live streams and idle sockets.

1. Ingest with open live streams: ``--agents`` concurrent agents (threads, one HTTP connection
   and one branch key each) post ``--batches`` batches of ``--batch`` new ratings; ratings/s
   with no stream open, then with ``--streams`` live streams open (``/api/v1/live``, spread
   over the branches' managers, each its own branch; a reader process counts what arrives),
   then with none again: the same server process, the same run. Target: with ≥ 0.9 × without.
2. Idle sockets: ``--idle`` sockets each send half a request line and nothing more; a page
   (the login page) and an upload (one batch) must still answer: their latency next to the
   same requests without the idle sockets; then how long the server keeps the idle sockets.

    python bench/bench_live_streams.py [--db sqlite|postgresql] [--streams 500] [--agents 8]
                                       [--batches 20] [--batch 500] [--idle 150]

The test suite runs a short version of part 2 with a few streams (tests/server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from serverlib import Server, call, server_env  # noqa: E402

PASSWORD = "bench-password-of-a-manager"

SETUP = """
import json, sys
from ratepad_server.cli import main
assert main(["init", "--db", sys.argv[1]]) == 0
assert main(["load-org", sys.argv[2], "--db", sys.argv[1]]) == 0
from ratepad_server.ingest.keys import enroll
from ratepad_server.api.auth import issue_token
from ratepad_server.org.models import Node
branches = Node.objects.filter(kind="branch").order_by("code")
keys = [enroll(n)[1] for n in branches]
tokens = [issue_token("m-" + n.code, sys.argv[3]) for n in branches]
print(json.dumps({"keys": keys, "tokens": tokens, "branches": [n.code for n in branches]}))
"""


def org_file(path: Path, branches: int) -> None:
    lines = ['[[node]]\ncode = "HQ"\nname = "HQ"\n']
    for b in range(branches):
        code = f"B{b:03d}"
        lines.append(f'[[node]]\ncode = "{code}"\nname = "{code}"\nparent = "HQ"\n'
                     'kind = "branch"\n')  # fmt: skip
        lines.append(f'[[window]]\ncode = "{code}-W0"\nbranch = "{code}"\nname = "W0"\n'
                     f'keypad = "{code}-K0"\n')  # fmt: skip
        lines.append(f'[[user]]\nusername = "m-{code}"\npassword = "{PASSWORD}"\n'
                     f'role = "manager"\nnode = "{code}"\n')  # fmt: skip
    path.write_text("\n".join(lines))


def setup_site(db: str, work: Path, branches: int) -> dict[str, Any]:
    org_file(work / "org.toml", branches)
    out = subprocess.run(
        [sys.executable, "-c", SETUP, db, str(work / "org.toml"), PASSWORD],
        check=True, capture_output=True, text=True, env=server_env(), cwd=work,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def batch(serial: str, first_seq: int, n: int) -> bytes:
    """``n`` ratings of ``serial`` from ``first_seq`` on, taken within the last two hours
    (the server accepts times up to two years back, and keeps partitions for them)."""
    start = int(time.time() * 1000) - 7_200_000
    return json.dumps({"ratings": [
        {"serial": serial, "journal_seq": s, "boot_id": 1, "uptime_ms": s * 1000,
         "time_ms": start + s % 3_600_000, "time_exact": True, "score": 1 + s % 5, "key_count": 5,
         "level_value": 60, "staff_id": "", "prompt_id": 0, "flags": 0}
        for s in range(first_seq, first_seq + n)
    ]}).encode()  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(port: int, keys: Sequence[str], branches: Sequence[str], agents: int,
           batches: int, size: int, first_seq: int) -> float:  # fmt: skip
    """Ratings/s of ``agents`` threads posting ``batches`` batches each (of ``size``)."""
    errors: list[str] = []
    # batch i of agent a: for branch (a + i * agents), with that branch's key: every branch
    # (and so every stream) gets its share
    todo = [[(a + i * agents) % len(keys) for i in range(batches)] for a in range(agents)]
    bodies = [[batch(f"{branches[b]}-K0", first_seq + (a * batches + i) * size, size)
               for i, b in enumerate(todo[a])] for a in range(agents)]  # fmt: skip
    start = threading.Barrier(agents + 1)

    def agent(a: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        for b, body in zip(todo[a], bodies[a], strict=True):
            headers = {"Authorization": f"Bearer {keys[b]}", "Content-Type": "application/json"}
            conn.request("POST", "/api/v1/ingest/batch", body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 200 or json.loads(answer)["stored"] != size:
                errors.append(f"{resp.status} {answer[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=agent, args=(a,)) for a in range(agents)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"ingest failed: {errors[0]}")
    return agents * batches * size / elapsed


# -- live stream readers (a process of their own: their reading does not slow the agents) ------
READER = """
import asyncio, json, sys
port, tokens, nodes = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
counts = [0] * len(tokens)
async def stream(i, opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"GET /api/v1/live?node={nodes[i]}&seconds=3600 HTTP/1.1\\r\\n"
                  f"Host: 127.0.0.1\\r\\nAuthorization: Bearer {tokens[i]}\\r\\n\\r\\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\\r\\n\\r\\n")
    if b" 200 " not in head.split(b"\\r\\n")[0]:
        raise SystemExit(f"stream {i}: {head[:100]!r}")
    tail = b""
    while True:
        data = await reader.read(65536)
        if not data:
            return
        chunk = tail + data
        if not opened.done() and b": live" in chunk:
            opened.set_result(None)
        counts[i] += chunk.count(b"event: rating")
        tail = chunk[-16:]
        last[0] = loop.time()
loop = None
last = [0.0]
async def main():
    global loop
    loop = asyncio.get_running_loop()
    opened = [loop.create_future() for _ in tokens]
    tasks = [asyncio.create_task(stream(i, opened[i])) for i in range(len(tokens))]
    await asyncio.wait_for(asyncio.gather(*opened), 120)
    print("open", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # until told to stop
    stop = loop.time() + 30
    while loop.time() - last[0] < 1.0 and loop.time() < stop:  # what is on its way arrives
        await asyncio.sleep(0.1)
    print(json.dumps(counts), flush=True)
    for t in tasks:
        t.cancel()
asyncio.run(main())
"""


class Readers:
    """``len(tokens)`` live streams held open by a reader process."""

    def __init__(self, port: int, tokens: Sequence[str], nodes: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(port), json.dumps(list(tokens)),
             json.dumps(list(nodes))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "open":
            self.proc.kill()
            raise SystemExit("the live streams did not open")

    def stop(self) -> list[int]:
        """The number of ratings each stream received (once nothing arrived for a second)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        counts: list[int] = json.loads(self.proc.stdout.readline())
        self.proc.wait(30)
        return counts


# -- idle sockets ------------------------------------------------------------------------------
def half_open(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that each sent half a request line."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /login/ HT")
        socks.append(s)
    return socks


def still_open(socks: Sequence[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed yet."""
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""  # EOF: closed by the server
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def page_and_upload(port: int, key: str, serial: str, seq: int) -> tuple[float, float]:
    """Seconds for the login page, and for one upload of one rating (both must answer)."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=60) as resp:
        assert resp.status == 200
        resp.read()
    t1 = time.perf_counter()
    body = json.loads(batch(serial, seq, 1))
    status, answer = call(f"http://127.0.0.1:{port}/", "/api/v1/ingest/batch", key, body,
                          timeout=60)  # fmt: skip
    assert status == 200, answer
    return t1 - t0, time.perf_counter() - t1


def _ms(values: Sequence[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    ap.add_argument("--streams", type=int, default=500)
    ap.add_argument("--branches", type=int, default=100)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--idle", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs without/with")
    args = ap.parse_args(argv)
    os.environ["RATEPAD_LIVE_MAX_PER_USER"] = str(args.streams)  # the server inherits it
    with tempfile.TemporaryDirectory(prefix="ratepad-bench-live-") as tmp:
        work = Path(tmp)
        cluster = None
        if args.db == "postgresql":
            from pg import Cluster

            cluster = Cluster()
            db = cluster.create_database("bench")
        else:
            db = f"sqlite:///{work / 'server.sqlite3'}"
        try:
            site = setup_site(db, work, args.branches)
            server = Server(db, work)
            try:
                assert server.proc is not None
                run(server.port, server.proc.pid, site, args)
            finally:
                server.close()
        finally:
            if cluster is not None:
                cluster.close()
    return 0


def run(port: int, pid: int, site: dict[str, Any], args: argparse.Namespace) -> None:
    keys, tokens, branches = site["keys"], site["tokens"], site["branches"]
    per_run = args.agents * args.batches * args.batch
    print(f"server: {args.db}, {args.branches} branches; ingest: {args.agents} agents x "
          f"{args.batches} batches x {args.batch} ratings", flush=True)  # fmt: skip
    ingest(port, keys, branches, args.agents, 2, args.batch, 1)  # warm up
    seq = 1 + args.agents * 2 * args.batch
    who = [i % len(branches) for i in range(args.streams)]
    # each batch goes to one branch: the streams of that branch each receive it
    batches_of = [0] * len(branches)
    for a in range(args.agents):
        for i in range(args.batches):
            batches_of[(a + i * args.agents) % len(branches)] += 1
    expected = sum(batches_of[b] * args.batch for b in who)
    without: list[tuple[float, float]] = []  # (ratings/s, server CPU ms per 1,000 ratings)
    with_streams: list[tuple[float, float]] = []

    def measured(first: int) -> tuple[float, float]:
        cpu = cpu_seconds(pid)
        rate = ingest(port, keys, branches, args.agents, args.batches, args.batch, first)
        return rate, (cpu_seconds(pid) - cpu) * 1e6 / per_run

    for r in range(args.rounds):  # alternating: the machine's other load hits both alike
        without.append(measured(seq))
        seq += per_run
        readers = Readers(port, [tokens[i] for i in who], [branches[i] for i in who])
        reading = cpu_seconds(readers.proc.pid)
        with_streams.append(measured(seq))
        reading = cpu_seconds(readers.proc.pid) - reading
        seq += per_run
        counts = readers.stop()
        print(f"  round {r + 1}: {without[-1][0]:7,.0f} ratings/s ({without[-1][1]:.0f} ms CPU per "
              f"1,000) without, {with_streams[-1][0]:7,.0f} ({with_streams[-1][1]:.0f} ms) with "
              f"{args.streams} streams; the streams received {sum(counts):,} of {expected:,} "
              f"(the reading process: {reading * 1e6 / per_run:.0f} ms CPU per 1,000 ratings "
              "on the same cores)", flush=True)  # fmt: skip
    r0, r1 = (statistics.median(rate for rate, _ in runs) for runs in (without, with_streams))
    c0, c1 = (statistics.median(c for _, c in runs) for runs in (without, with_streams))
    print(f"  ingest, no live stream (median):  {r0:9,.0f} ratings/s, server CPU {c0:.0f} ms "
          "per 1,000 ratings", flush=True)  # fmt: skip
    print(f"  ingest, {args.streams} live streams (median): {r1:9,.0f} ratings/s ({r1 / r0:.2f} x; "
          f"target >= 0.9 x), server CPU {c1:.0f} ms per 1,000 ratings ({c1 / c0:.2f} x); "
          f"each rating reaches the {args.streams // len(branches)} streams of its branch",
          flush=True)  # fmt: skip

    serial = f"{branches[0]}-K0"
    quiet = [page_and_upload(port, keys[0], serial, seq + i) for i in range(10)]
    seq += 10
    socks = half_open(port, args.idle)
    t_open = time.monotonic()
    busy = [page_and_upload(port, keys[0], serial, seq + i) for i in range(10)]
    seq += 10
    print(f"  login page, no idle socket:     {_ms([p for p, _ in quiet])}; "
          f"upload {_ms([u for _, u in quiet])}", flush=True)  # fmt: skip
    print(f"  login page, {args.idle} half-open sockets: {_ms([p for p, _ in busy])}; "
          f"upload {_ms([u for _, u in busy])}", flush=True)  # fmt: skip
    while still_open(socks) and time.monotonic() - t_open < 120:
        time.sleep(0.5)
    left = still_open(socks)
    print(f"  half-open sockets closed by the server after {time.monotonic() - t_open:.0f} s"
          + (f" ({left} still open)" if left else ""), flush=True)  # fmt: skip
    for s in socks:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
