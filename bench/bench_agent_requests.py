"""What one window agent's request costs the server: CPU per heartbeat and per small upload.

At a big bank's peak the server answers ~1,600 agent requests a second, ~950 of them heartbeats
(an empty batch after a minute without an upload) and most of the rest uploads of one rating
and its prompt (``bench/bench_loadtest.py``). Each is cheap in the database; what it costs
the server's process (HTTP, Django's middleware, authentication, ORM, the rollups, the alert
rules and the loop's cases) decides how many instances a bank needs.

For SQLite and a throwaway PostgreSQL cluster (fsync on), one ``ratepad server run`` instance at
a time, one client on one keep-alive connection sending ``--requests`` requests of each kind
one after the other; the server's CPU (all its threads, from /proc) and PostgreSQL's (every
backend) per request:

* ``healthz``: ``GET /healthz``, answered by the first middleware: the floor every request
  pays (uvicorn, the thread hop, Django's request), measured in the same run as a baseline;
* ``heartbeat``: an empty batch; ``upload 1``: one rating and its answered prompt (as the
  agent sends them); ``upload 20``: twenty ratings;
* ``--baseline REV``: the same requests against the server of another git revision (its
  ``server/`` tree taken with ``git archive``), on the same database, in the same run.

Then how many heartbeats / 1-rating uploads a second one instance answers with ``--clients``
concurrent clients (threads of this process, on the same cores: the figure is a lower bound;
the CPU figures above say what one core would answer).

    python bench/bench_agent_requests.py [--requests 400] [--clients 16] [--seconds 10]
                                         [--baseline REV] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg import Cluster  # noqa: E402
from serverlib import Server, build_template  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
INGEST = "/api/v1/ingest/batch"
KINDS = ("healthz", "heartbeat", "upload 1", "upload 20")


def cpu_of(pids: Callable[[], list[int]]) -> dict[int, float]:
    """CPU seconds used so far by each process ``pids()`` names (all its threads)."""
    out = {}
    for pid in pids():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two ``cpu_of``: a process that ended meanwhile is left out (its
    last seconds unknown), one that started counts whole."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def children(parent: int) -> list[int]:
    out = [parent]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == parent:
                    out.append(int(entry))
    return out


def backends_of(postmaster: int) -> Callable[[], list[int]]:
    return lambda: children(postmaster)[1:]


class Bodies:
    """Request bodies with journal sequences and prompt ids never sent before."""

    def __init__(self, serials: list[str]) -> None:
        self.serials = serials
        self.seq = int(time.time() * 1000)  # above any earlier run's, on the same database

    def rating(self, serial: str, prompt: int) -> dict[str, Any]:
        self.seq += 1
        score = 1 + self.seq % 5
        return {"serial": serial, "journal_seq": self.seq, "boot_id": 1,
                "uptime_ms": self.seq % 10**9, "time_ms": int(time.time() * 1000) - 5000,
                "time_exact": True, "score": score, "key_count": 5,
                "level_value": [0, 40, 60, 80, 100][score - 1], "staff_id": "S001",
                "prompt_id": prompt, "flags": 0 if prompt else 1}  # fmt: skip

    def body(self, kind: str) -> bytes:
        if kind == "heartbeat":
            return b"{}"
        if kind == "upload 1":
            serial = self.serials[self.seq % len(self.serials)]
            r = self.rating(serial, self.seq + 1)
            now = r["time_ms"]
            prompt = {"serial": serial, "prompt_id": r["prompt_id"], "staff_id": "S001",
                      "state": "answered", "issued_at_ms": now - 4000, "timeout_ms": 30000,
                      "closed_at_ms": now, "rating_seq": r["journal_seq"]}  # fmt: skip
            return json.dumps({"ratings": [r], "prompts": [prompt]}).encode()
        ratings = [self.rating(self.serials[i % len(self.serials)], 0) for i in range(20)]
        return json.dumps({"ratings": ratings}).encode()


class Client:
    """One keep-alive connection."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def send(self, kind: str, bodies: Bodies) -> None:
        if kind == "healthz":
            self.conn.request("GET", "/healthz")
        else:
            self.conn.request("POST", INGEST, bodies.body(kind), self.headers)
        resp = self.conn.getresponse()
        answer = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{kind}: {resp.status} {answer[:300]!r}")

    def close(self) -> None:
        self.conn.close()


def cost(server: Server, pg: Callable[[], list[int]], key: str, serials: list[str],
         requests: int) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """Per kind: (server CPU ms, PostgreSQL CPU ms, wall ms) per request."""
    assert server.proc is not None
    pid = server.proc.pid
    bodies = Bodies(serials)
    client = Client(server.port, key)
    out = {}
    try:
        for kind in KINDS:
            for _ in range(max(20, requests // 10)):  # warm: connections, caches, imports
                client.send(kind, bodies)
            cpu0, db0, t0 = cpu_of(lambda: [pid]), cpu_of(pg), time.perf_counter()
            for _ in range(requests):
                client.send(kind, bodies)
            cpu1, db1, t1 = cpu_of(lambda: [pid]), cpu_of(pg), time.perf_counter()
            out[kind] = (used(cpu0, cpu1) / requests * 1000, used(db0, db1) / requests * 1000,
                         (t1 - t0) / requests * 1000)  # fmt: skip
    finally:
        client.close()
    return out


def rate(server: Server, agents: list[tuple[str, list[str]]], kind: str, clients: int,
         seconds: float) -> tuple[float, float]:  # fmt: skip
    """(requests/s answered, server cores used) with ``clients`` concurrent connections, each
    an agent of ``agents`` (key, keypads) in turn (one agent uploads one batch at a time: the
    clients of one agent wait for one another's commits)."""
    assert server.proc is not None
    pid = server.proc.pid
    stop = time.monotonic() + seconds
    done = [0] * clients
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)

    def run(i: int) -> None:
        key, serials = agents[i % len(agents)]
        bodies = Bodies(serials)
        bodies.seq += i * 10_000_000
        client = Client(server.port, key)
        ready.wait()
        try:
            while time.monotonic() < stop:
                client.send(kind, bodies)
                done[i] += 1
        except (OSError, RuntimeError) as exc:
            errors.append(str(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    cpu0, t0 = cpu_of(lambda: [pid]), time.perf_counter()
    for t in threads:
        t.join()
    cpu1, t1 = cpu_of(lambda: [pid]), time.perf_counter()
    if errors:
        raise RuntimeError(f"{kind}: {len(errors)} clients failed: {errors[0]}")
    return sum(done) / (t1 - t0), used(cpu0, cpu1) / (t1 - t0)


@contextlib.contextmanager
def revision_tree(rev: str) -> Iterator[Path]:
    """The ``server``, ``host`` and ``protocol`` trees of git revision ``rev``."""
    work = Path(tempfile.mkdtemp(prefix="bench-rev-"))
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "server", "host",
                                  "protocol"], check=True, capture_output=True).stdout  # fmt: skip
        (work / "tree.tar").write_bytes(archive)
        with tarfile.open(work / "tree.tar") as tar:
            tar.extractall(work / "tree", filter="data")
        yield work / "tree"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def python_path(tree: Path | None) -> Iterator[None]:
    """Servers started inside run the code of ``tree`` (None: this checkout's)."""
    old = os.environ.get("PYTHONPATH")
    if tree is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            str(tree / part) for part in ("host", "server", "protocol"))  # fmt: skip
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=400, help="requests of each kind")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients for req/s")
    ap.add_argument("--seconds", type=float, default=10, help="length of each req/s run")
    ap.add_argument("--threads", type=int, default=16, help="the server's request threads")
    ap.add_argument("--baseline", metavar="REV", help="also measure this git revision's server")
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-agent-requests-"))
    cluster: Cluster | None = None
    stack = contextlib.ExitStack()
    try:
        trees: dict[str, Path | None] = {"this tree": None}
        if args.baseline:
            trees[args.baseline] = stack.enter_context(revision_tree(args.baseline))
        print(
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
            f"{args.requests} requests of each kind, one after the other, on one connection"
        )
        for backend in args.backends.split(","):
            pg: Callable[[], list[int]] = list
            if backend == "postgresql":
                cluster = Cluster()
                db = cluster.create_database("bench")
                pg = backends_of(int((cluster.data / "postmaster.pid").read_text().split()[0]))
            else:
                db = f"sqlite:///{work / 'bench.sqlite3'}"
            template = build_template(db, backend, db, work)
            key, serials = template.keys["BJ-001"], ["K1", "K2"]
            agents = [(key, serials), (template.keys["BJ-002"], ["K3"]),
                      (template.keys["SH-001"], ["K4"])]  # fmt: skip
            print(f"\n{backend}:  ms per request: server CPU / "
                  f"{'PostgreSQL CPU / ' if cluster else ''}wall")  # fmt: skip
            for name, tree in trees.items():
                with python_path(tree):
                    server = Server(db, work, "--threads", str(args.threads))
                try:
                    costs = cost(server, pg, key, serials, args.requests)
                    rates = {kind: rate(server, agents, kind, args.clients, args.seconds)
                             for kind in ("heartbeat", "upload 1")}  # fmt: skip
                finally:
                    server.close()
                for kind, (ms, db_ms, wall) in costs.items():
                    pg_part = f"{db_ms:6.2f} / " if backend == "postgresql" else ""
                    print(f"  {name:12} {kind:10} {ms:6.2f} / {pg_part}{wall:6.2f}")
                for kind, (per_s, cores) in rates.items():
                    print(f"  {name:12} {kind:10} {per_s:7,.0f} requests/s with {args.clients} "
                          f"clients, server at {cores:.2f} cores")  # fmt: skip
            if cluster is not None:
                cluster.close()
                cluster = None
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    finally:
        stack.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
