"""``ratepad server loadtest``: window agents and managers at a bank's peak against running
server instances, driven by Locust.

1. Prepares the load test's organisation in the server's database (idempotent, kept between
   runs): a root node ``LT``, regions, branches of ``--windows-per-branch`` windows, one keypad
   and one agent key per window, manager accounts of the regions. The keys are kept in the plan
   file (``--plan``), so a second run reuses them.
2. Runs Locust headless in a subprocess (``locustfile.py``; importing Locust patches the
   process with gevent, so this process never does), in one process or, with ``--workers N``,
   a master and N worker processes (``--processes``; for several machines, start workers with
   ``locust -f <locustfile> --worker --master-host ...`` and the same plan file).
   After the run's ``--seconds`` the agents only send what their outboxes still hold, until
   every one is answered (``--drain-max`` seconds at most): a server's backlog must not leave
   ratings on the wire when the figures are read.
3. Reads back from the database what the run stored and prints: requests, failures and
   latency percentiles per kind of request, ratings sent vs stored (they must be equal), the
   drain's length, duplicates answered for resent batches, the database's growth per million
   ratings, and the CPU time Locust itself used. Exit 0 if nothing failed and stored = sent, else 1.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..cli import Usage

PREFIX = "LT"  # codes of the load test's organisation
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
EXIT_FAILED = 1


def add_parser(sub: Any, db: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``loadtest`` action, on ``build_parser``'s subparsers."""
    p = sub.add_parser(
        "loadtest",
        help="window agents (heartbeats, ratings) and managers (live walls, reports) against "
        "running server instances, with Locust; prints latency, errors, stored vs sent",
    )
    db(p)
    p.add_argument("--url", action="append", required=True, metavar="URL",
                   help="a running server instance (repeat for several: users are spread "
                   "over them)")  # fmt: skip
    p.add_argument("--agents", type=int, default=1000, help="window agents (default 1000)")
    p.add_argument(
        "--managers",
        type=int,
        default=10,
        help="managers, each with a live wall and a report page open (default 10)",
    )
    p.add_argument("--seconds", type=float, default=60, help="length of the run (default 60)")
    p.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        metavar="S",
        help="an agent's heartbeat after S seconds without an upload (default 60)",
    )
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="the customer profile (JSON or TOML, as 'ratepad sim fleet --profile'); "
                   "default: the fleet simulator's")  # fmt: skip
    p.add_argument("--windows-per-branch", type=int, default=3, help="default 3")
    p.add_argument(
        "--agents-per-user",
        type=int,
        default=50,
        help="window agents played by one Locust user (default 50)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Locust worker processes beside a master (default 0: one process)",
    )
    p.add_argument("--spawn-rate", type=float, default=50, help="Locust users started per second")
    p.add_argument(
        "--resend-share",
        type=float,
        default=0.01,
        help="share of committed batches sent again (a lost answer; default 0.01)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=0,
        metavar="S",
        help="no new rating in the last S seconds of the run (default 0)",
    )
    p.add_argument("--drain-max", type=float, default=300, metavar="S",
                   help="after the run, the agents send what their outboxes hold until every "
                   "one is answered, at most S seconds (default 300)")  # fmt: skip
    p.add_argument("--plan", type=Path, default=Path("ratepad-loadtest.json"),
                   help="where the agent keys are kept between runs (default "
                   "./ratepad-loadtest.json; mode 0600)")  # fmt: skip
    p.add_argument("--out", type=Path, help="a directory for Locust's CSV statistics and log")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.add_argument("--seed", type=int, default=1, help="random seed of the traffic (default 1)")


def _check(args: argparse.Namespace) -> None:
    checks = [
        (1 <= args.agents <= 1_000_000, "--agents: expected 1..1000000"),
        (0 <= args.managers <= 10_000, "--managers: expected 0..10000"),
        (5 <= args.seconds <= 86_400, "--seconds: expected 5..86400"),
        (1 <= args.heartbeat <= 3600, "--heartbeat: expected 1..3600"),
        (1 <= args.windows_per_branch <= 1000, "--windows-per-branch: expected 1..1000"),
        (1 <= args.agents_per_user <= 10_000, "--agents-per-user: expected 1..10000"),
        (0 <= args.workers <= 256, "--workers: expected 0..256"),
        (0 < args.spawn_rate <= 10_000, "--spawn-rate: expected more than 0, at most 10000"),
        (0 <= args.resend_share <= 1, "--resend-share: expected 0..1"),
        (0 <= args.drain < args.seconds, "--drain: expected 0 or more, less than --seconds"),
        (1 <= args.drain_max <= 86_400, "--drain-max: expected 1..86400"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise Usage(message)
    for url in args.url:
        if not url.startswith(("http://", "https://")):
            raise Usage(f"--url {url!r}: expected http://HOST:PORT")
    if importlib.util.find_spec("locust") is None:
        raise Usage("Locust is not installed: pip install 'ratepad[loadtest]'")
    if args.profile is not None:
        from ratepad.scenario.fleet import Profile, ProfileError

        try:
            Profile.load(args.profile)
        except ProfileError as exc:
            raise Usage(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Prepare, run Locust, read back, print (Django is set up for ``--db``)."""
    _check(args)
    from ..cli import _check_database

    _check_database()
    plan = prepare(args)
    users = math.ceil(args.agents / args.agents_per_user)
    managers = plan["managers"][: args.managers]
    out = args.out or Path(tempfile.mkdtemp(prefix="ratepad-loadtest-"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("counts-*.json"):
        old.unlink()
    seq_base = int(time.time()) * 10_000  # above every earlier run's journal sequences
    run_plan = {
        "urls": [u.rstrip("/") for u in args.url], "agents": plan["agents"][: args.agents],
        "managers": managers, "seconds": args.seconds, "drain_s": args.drain,
        "drain_max_s": args.drain_max,
        "heartbeat_s": args.heartbeat, "agents_per_user": args.agents_per_user,
        "workers": max(1, args.workers), "resend_share": args.resend_share, "seed": args.seed,
        "seq_base": seq_base, "profile": str(args.profile.resolve()) if args.profile else None,
    }  # fmt: skip
    plan_file = out / "run-plan.json"
    _write_private(plan_file, run_plan)
    size0 = database_bytes()
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(users + len(managers)), "-r", str(args.spawn_rate),
        "-t", f"{args.seconds + args.drain_max + 10:g}s",  # the drain ends it sooner
        "--stop-timeout", "5", "--csv", str(out / "locust"), "--host", run_plan["urls"][0],
        "--only-summary", "--logfile", str(out / "locust.log"), "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if args.workers:
        command += ["--processes", str(args.workers)]
    env = {**os.environ, "RATEPAD_LOADTEST_PLAN": str(plan_file),
           "RATEPAD_LOADTEST_OUT": str(out)}  # fmt: skip
    print(f"ratepad server loadtest: {args.agents:,} agents ({users:,} Locust users), "
          f"{len(managers)} managers, {args.seconds:g} s against {', '.join(args.url)}; "
          f"statistics in {out}", flush=True)  # fmt: skip
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with (out / "locust.out").open("w") as log:
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - started
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        tail = (out / "locust.out").read_text(errors="replace").strip().splitlines()[-5:]
        print(f"ratepad server loadtest: Locust failed (exit {code}): {' / '.join(tail)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    locust_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    results = summarize(out, seq_base, size0, locust_cpu, wall, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["ok"] else EXIT_FAILED


def _write_private(path: Path, data: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)


# -- the organisation, keys and accounts -------------------------------------------------------
def layout(agents: int, per_branch: int) -> tuple[int, int]:
    """(branches, regions) for ``agents`` windows: a big bank's ~30 provinces at most."""
    branches = math.ceil(agents / per_branch)
    return branches, max(1, min(32, math.ceil(branches / 20)))


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The plan (agent keys and keypads, manager accounts), made or reused."""
    from ..ingest.models import AgentKey

    old: dict[str, Any] = {}
    if args.plan.exists():
        try:
            old = json.loads(args.plan.read_text())
        except (OSError, ValueError) as exc:
            raise Usage(f"--plan {args.plan}: cannot read it: {exc}") from None
    same = (old.get("windows_per_branch") == args.windows_per_branch
            and len(old.get("agents", [])) >= args.agents
            and len(old.get("managers", [])) >= args.managers)  # fmt: skip
    if same and old["agents"]:  # its keys still in this database?
        key_id = old["agents"][0][0][len("rpk_") :].partition("_")[0]
        same = AgentKey.objects.filter(key_id=key_id, revoked_at__isnull=True).exists()
    if same:
        return old
    started = time.monotonic()
    plan = _make(args.agents, args.windows_per_branch, args.managers)
    _write_private(args.plan, plan)
    print(f"ratepad server loadtest: organisation, {args.agents:,} agent keys and "
          f"{args.managers} managers prepared in {time.monotonic() - started:.0f} s "
          f"(kept in {args.plan})", flush=True)  # fmt: skip
    return plan


def _make(agents: int, per_branch: int, managers: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import transaction

    from ..ingest.keys import enroll
    from ..org.loader import check_org, load_org
    from ..org.models import Node

    branches, regions = layout(agents, per_branch)
    region = [f"{PREFIX}-R{r:02d}" for r in range(regions)]
    users = [(f"lt-manager-{m:04d}", region[m % regions]) for m in range(managers)]
    head = {
        "node": [{"code": PREFIX, "name": "Load test"}]
        + [{"code": c, "name": c, "parent": PREFIX} for c in region],
        "user": [{"username": u, "role": "manager", "node": n, "password": secrets.token_hex(8)}
                 for u, n in users],
    }  # fmt: skip
    load_org(check_org(head, "load test"))
    chunk = 500  # branches per transaction: the loader checks a file's keypads pairwise
    for first in range(0, branches, chunk):
        org: dict[str, list[dict[str, str]]] = {"node": [], "window": []}
        for b in range(first, min(first + chunk, branches)):
            code = f"{PREFIX}-B{b:05d}"
            org["node"].append({"code": code, "name": code, "parent": region[b % regions],
                                "kind": "branch"})  # fmt: skip
            for w in range(per_branch):
                i = b * per_branch + w
                if i < agents:
                    keypad = f"{PREFIX}-K{i:06d}"
                    org["window"].append(
                        {"code": f"{code}-W{w}", "branch": code, "name": f"W{w}", "keypad": keypad}
                    )
        load_org(check_org(org, "load test"))
    nodes = {n.code: n for n in Node.objects.filter(code__startswith=f"{PREFIX}-B")}
    rows = []
    with transaction.atomic():
        for i in range(agents):
            _, key = enroll(nodes[f"{PREFIX}-B{i // per_branch:05d}"])
            rows.append([key, f"{PREFIX}-K{i:06d}", f"{PREFIX}-S{i:06d}"])
    accounts = []
    for username, node in users:
        password = secrets.token_urlsafe(18)
        user = User.objects.get(username=username)
        user.set_password(password)
        user.save()  # no longer an initial password: the server starts
        accounts.append([username, password, node])
    return {"windows_per_branch": per_branch, "agents": rows, "managers": accounts}


# -- reading back ------------------------------------------------------------------------------
def database_bytes() -> dict[str, int]:
    """Bytes of the whole database and of the structures ratings fill (PostgreSQL; SQLite:
    the file)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        name = connection.settings_dict["NAME"]
        return {"database": os.path.getsize(name) if os.path.exists(str(name)) else 0}
    parts = {
        "database": "SELECT pg_database_size(current_database())",
        "ratings": "SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
        " WHERE inhparent = 'ingest_rating'::regclass",
        "rating_keys": "SELECT pg_total_relation_size('ingest_ratingkey')",
        "rollups": "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c"
        " WHERE c.relname IN ('rollups_hourrollup', 'rollups_dayrollup',"
        " 'rollups_nodedayrollup')",
    }
    out = {}
    with connection.cursor() as cur:
        for name, sql in parts.items():
            cur.execute(sql)
            row = cur.fetchone()
            out[name] = int(row[0] or 0) if row else 0
    return out


def read_counts(out: Path) -> Counter[str]:
    """The Locust processes' counts added up (``max_...``: the largest)."""
    total: Counter[str] = Counter()
    for path in out.glob("counts-*.json"):
        for name, value in json.loads(path.read_text()).items():
            total[name] = max(total[name], value) if name.startswith("max_") else (
                total[name] + value)  # fmt: skip
    return total


def read_stats(out: Path) -> list[dict[str, Any]]:
    """Locust's statistics per request name (its CSV), the aggregated row last."""
    path = out / "locust_stats.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            {"name": row["Name"], "requests": int(row["Request Count"]),
             "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
             "p50_ms": _num(row["50%"]), "p99_ms": _num(row["99%"]),
             "max_ms": _num(row["Max Response Time"])}
            for row in csv.DictReader(f)
        ]  # fmt: skip


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def summarize(
    out: Path, seq_base: int, size0: dict[str, int], locust_cpu: float, wall: float,
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    from ..ingest.models import Conflict, Quarantine, Rating

    ours = {"serial__startswith": f"{PREFIX}-K", "journal_seq__gt": seq_base}
    stored = Rating.objects.filter(**ours).count()
    quarantined = Quarantine.objects.filter(kind="rating", **ours).count()
    conflicts = Conflict.objects.filter(**ours).count()
    size1 = database_bytes()
    counts = read_counts(out)
    stats = read_stats(out)
    failures = sum(s["failures"] for s in stats if s["name"] != "Aggregated")
    sent = counts["sent"]
    per_million = {k: (size1[k] - size0.get(k, 0)) * 1e6 / stored if stored else 0.0
                   for k in size1}  # fmt: skip
    ok = failures == 0 and stored == sent and not quarantined and not conflicts
    ok = ok and counts["again_stored"] == 0 and counts["agents"] == args.agents
    ok = ok and counts["outboxes_left"] == 0 and "max_drain_ms" in counts
    print(f"  {'request':34} {'count':>9} {'failed':>7} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>8}")  # fmt: skip
    for s in stats:
        print(f"  {s['name'][:34]:34} {s['requests']:9,} {s['failures']:7,} {s['rps']:7.1f} "
              f"{s['p50_ms']:7.0f} {s['p99_ms']:7.0f} {s['max_ms']:8.0f}")  # fmt: skip
    agent_rps = sum(s["rps"] for s in stats if s["name"].startswith(("heartbeat", "upload")))
    beats = sum(s["rps"] for s in stats if s["name"] == "heartbeat")
    print(f"  agents' requests: {agent_rps:,.0f}/s (heartbeats {beats:,.0f}/s); ratings "
          f"stored: {stored / args.seconds:,.1f}/s over the run")  # fmt: skip
    print(
        f"  agents played: {counts['agents']:,} of {args.agents:,}; live walls open: "
        f"{counts['walls']}; rating events received by the walls: {counts['wall_events']:,}"
    )
    print(f"  ratings: sent {sent:,}, stored in the database {stored:,} "
          f"({'= sent' if stored == sent else 'DIFFERENT from sent'}); sent but never answered "
          f"(on the wire at the end): {counts['unanswered']:,}; committed answers: "
          f"{counts['stored']:,} stored, {counts['duplicates']:,} duplicates; resent after an "
          f"error {counts['resent_after_error']:,}; sent again after a commit "
          f"{counts['resent_committed']:,} (answered as duplicates: "
          f"{counts['again_duplicates']:,}, stored twice: {counts['again_stored']:,}); "
          f"quarantined {quarantined}, conflicts {conflicts}")  # fmt: skip
    if "max_drain_ms" not in counts:
        print("  drain: the run was stopped before its drain ended")
    else:
        done = "every agent outbox answered" if counts["outboxes_left"] == 0 else (
            f"{counts['outboxes_left']:,} agents' outboxes NOT answered")  # fmt: skip
        print(f"  drain: {done} {counts['max_drain_ms'] / 1000:.1f} s after the run (at most "
              f"{args.drain_max:g} s)")  # fmt: skip
    print(
        f"  database: {(size1['database'] - size0['database']) / 1e6:+,.1f} MB, "
        f"{per_million['database'] / 1e9:.2f} GB per million ratings stored"
        + (
            ""
            if "ratings" not in size1
            else f" (ratings {per_million['ratings'] / 1e9:.2f}, their dedupe keys "
            f"{per_million['rating_keys'] / 1e9:.2f}, rollups {per_million['rollups'] / 1e9:.2f}"
            " GB per million; the rest: agents' heartbeats, prompts, sessions, devices)"
        )
    )
    print(f"  Locust itself: {locust_cpu:,.0f} CPU-seconds in {wall:,.0f} s "
          f"({locust_cpu / wall:.2f} cores)")  # fmt: skip
    print(f"ratepad server loadtest: {'passed' if ok else 'FAILED'} ({failures} failed requests)")
    return {"ok": ok, "stats": stats, "counts": dict(counts), "stored": stored,
            "quarantined": quarantined, "conflicts": conflicts, "failures": failures,
            "bytes_before": size0, "bytes_after": size1, "bytes_per_million": per_million,
            "locust_cpu_s": locust_cpu, "wall_s": wall}  # fmt: skip
