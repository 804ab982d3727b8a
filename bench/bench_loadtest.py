"""A big bank's peak against the ratepad server on this machine: ``ratepad server loadtest``
with its defaults raised to 70,000 window agents (the fleet simulator's customer profile:
~14 ratings an hour per window, ~280 ratings/s, each prompt uploaded when issued and when
closed, a heartbeat after a minute without an upload: ~1,600 requests/s, ~950 of them
heartbeats) and 100 managers with a live wall and a report page open, for 10 minutes.

Everything runs here: a throwaway PostgreSQL cluster (fsync on), ``--servers`` server
instances (``ratepad server run``, uvicorn), Locust (a subprocess of the loadtest command).
Beside the command's figures (latency per request, failures, ratings sent vs stored, database
bytes per million ratings, Locust's own CPU) this prints what each part used of the machine's
cores, sampled from /proc every 5 s: the server instances, PostgreSQL, Locust, and everything
else on the machine (it is shared). Afterwards ``ratepad server rollups --check``.

    python bench/bench_loadtest.py [--agents 70000] [--managers 100] [--seconds 600]
                                   [--servers 2] [--workers 0] [--keep DIR] [--prepare-only]

``--keep DIR`` keeps the cluster and the plan (agent keys) in DIR: ``--prepare-only`` makes the
organisation and the keys there, a later run reuses them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg import Cluster  # noqa: E402
from serverlib import Server, server_env  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds used so far) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _machine_busy() -> float:
    """CPU seconds the whole machine was busy (all cores, everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


class CpuSampler:
    """CPU seconds per group of processes, from /proc every ``every`` s (a process that ends
    between two samples loses at most its last interval)."""

    def __init__(self, groups: dict[str, Callable[[int, int, str], bool]], every: float = 5):
        self.groups, self.every = groups, every
        self.last: dict[int, tuple[str, float]] = {}
        self.used = dict.fromkeys(groups, 0.0)
        self.busy0 = _machine_busy()
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                ppid, cpu = _stat(pid)
                cmd = _cmdline(pid)
            except OSError:
                continue
            group = next((g for g, match in self.groups.items() if match(pid, ppid, cmd)), None)
            if group is None:
                continue
            base = self.last[pid][1] if pid in self.last else self._first(cpu)
            self.used[group] += cpu - base
            self.last[pid] = (group, cpu)

    def _first(self, cpu: float) -> float:
        # a process already running when sampling began counts from then; one started later
        # from its start
        return cpu if time.monotonic() - self.t0 < self.every / 2 else 0.0

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self.t0
        out = {g: s / wall for g, s in self.used.items()}
        out["whole machine"] = (_machine_busy() - self.busy0) / wall
        out["wall_s"] = wall
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--agents", type=int, default=70_000)
    ap.add_argument("--managers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--servers", type=int, default=2, help="server instances")
    ap.add_argument("--threads", type=int, default=16, help="request threads per instance")
    ap.add_argument("--workers", type=int, default=0, help="Locust worker processes")
    ap.add_argument("--agents-per-user", type=int, default=50)
    ap.add_argument("--spawn-rate", type=float, default=50)
    ap.add_argument("--drain", type=float, default=0, help="no new rating in the last S s")
    ap.add_argument("--drain-max", type=float, default=300,
                    help="after the run, until every outbox is answered, at most S s")  # fmt: skip
    ap.add_argument("--keep", type=Path, help="keep the cluster and the plan in this directory")
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-loadtest-"))
    work.mkdir(parents=True, exist_ok=True)
    reuse = (work / "pg" / "data" / "postgresql.conf").exists()
    cluster = Cluster(work / "pg", reuse=True)
    servers: list[Server] = []
    env = server_env()
    try:
        url = cluster.url("bench")
        if not reuse:
            url = cluster.create_database("bench")
        subprocess.run([sys.executable, "-m", "ratepad_server", "init", "--db", url],
                       check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)  # fmt: skip
        servers = [Server(url, work, "--threads", str(args.threads)) for _ in range(args.servers)]
        command = [
            sys.executable, "-m", "ratepad_server", "loadtest", "--db", url,
            *[arg for s in servers for arg in ("--url", s.url)],
            "--agents", str(args.agents), "--managers", str(args.managers),
            "--seconds", str(args.seconds), "--workers", str(args.workers),
            "--agents-per-user", str(args.agents_per_user), "--spawn-rate", str(args.spawn_rate),
            "--drain", str(args.drain), "--drain-max", str(args.drain_max),
            "--plan", str(work / "plan.json"), "--out", str(work / "locust"),
            "--json", str(work / "result.json"),
        ]  # fmt: skip
        if args.prepare_only:
            command[command.index("--seconds") + 1] = "5"
            command[command.index("--drain") + 1] = "1"
            command[command.index("--drain-max") + 1] = "30"
        print(f"PostgreSQL (fsync on) in {work / 'pg'}, {args.servers} server instance(s) x "
              f"{args.threads} threads, {os.cpu_count()} cores", flush=True)  # fmt: skip
        server_pids = {s.proc.pid for s in servers if s.proc is not None}
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        sampler = CpuSampler({
            "server instances": lambda pid, ppid, cmd: pid in server_pids or ppid in server_pids,
            "PostgreSQL": lambda pid, ppid, cmd: pid == postmaster or ppid == postmaster,
            "Locust": lambda pid, ppid, cmd: "loadtest/locustfile.py" in cmd,
        })  # fmt: skip
        run = subprocess.run(command, env=env, cwd=work)
        cores = sampler.stop()
        if args.prepare_only:
            return 0
        wall = cores.pop("wall_s")
        ours = sum(v for k, v in cores.items() if k != "whole machine")
        print(f"cores used over {wall:.0f} s (of {os.cpu_count()}): " + ", ".join(
            f"{k} {v:.2f}" for k, v in cores.items()) + f", other work on the machine "
            f"{max(0.0, cores['whole machine'] - ours):.2f}", flush=True)  # fmt: skip
        check = subprocess.run(
            [sys.executable, "-m", "ratepad_server", "rollups", "--check", "--db", url],
            env=env, cwd=work, capture_output=True, text=True,
        )  # fmt: skip
        print(check.stdout.strip(), flush=True)
        result = json.loads((work / "result.json").read_text())
        result["cores"] = cores
        (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        return run.returncode or check.returncode
    finally:
        for s in servers:
            s.close()
        if args.keep:
            cluster.stop()
        else:
            cluster.close()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
