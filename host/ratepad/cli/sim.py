"""`ratepad sim SCENARIO`: run a scenario file on virtual time (contract: architecture.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..scenario import Scenario, ScenarioError, load, run
from .common import EXIT_OK, UsageError, positive_float


def _fleet(args: argparse.Namespace) -> int:
    import time

    from ..scenario.fleet import Profile, ProfileError, run_fleet

    if args.scenario is not None:
        raise UsageError("give either SCENARIO or --fleet, not both")
    if args.fleet < 1 or args.hours <= 0:
        raise UsageError("--fleet needs at least 1 keypad and --hours more than 0")
    try:
        profile = Profile.load(args.profile)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    sink = None
    store = None
    if args.db:
        from ..agent.store import open_store_for_fleet

        store = open_store_for_fleet(args.db)
        sink = store.add_simulated
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        result = run_fleet(
            args.fleet, args.hours, profile, seed=args.seed, sink=sink, engine=args.engine
        )
    finally:
        if store is not None:
            store.close()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    summary = {
        "keypads": result.keypads,
        "hours": result.hours,
        "prompts": result.prompts,
        "ratings": result.ratings,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "simulated_ratings_per_s": round(result.ratings / wall, 1) if wall else None,
        "simulated_keypad_hours_per_s": round(result.keypads * result.hours / wall, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            print(f"{k:<30} {v}")
    return EXIT_OK


def _serve(args: argparse.Namespace, scenario: Scenario) -> int:
    """``--serve``: the timeline on the wall clock, each keypad at ``tcp://HOST:PORT/ID``."""
    from ..scenario.serve import ScenarioServer, parse_address, skipped_notes

    for option in ("keys", "capture"):
        if getattr(args, option):
            raise UsageError(f"--{option} does not go with --serve")
    speed = 1.0 if args.speed is None else args.speed
    try:
        server = ScenarioServer(scenario, parse_address(args.serve), speed, args.engine)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    try:
        for note in skipped_notes(scenario):
            print(f"ratepad sim: note: {note}", file=sys.stderr)
        server.start()
        for device, url in server.urls().items():
            if args.json:
                print(json.dumps({"device": device, "url": url}), flush=True)
            else:
                print(f"serving {url}", flush=True)
        server.wait()
    finally:
        server.close()
    if not args.json:
        stats = ", ".join(f"{k}={v}" for k, v in sorted(server.stats.items()) if v)
        print(
            f"# until_ms {scenario.until_ms} reached" + (f"; {stats}" if stats else ""),
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_sim(args: argparse.Namespace) -> int:
    if args.fleet is not None and (args.serve is not None or args.speed is not None):
        raise UsageError("--serve and --speed go with a SCENARIO, not --fleet")
    if args.fleet is not None:
        return _fleet(args)
    if args.scenario is None:
        raise UsageError("give a SCENARIO file, or --fleet N --hours H")
    if args.speed is not None and args.serve is None:
        raise UsageError("--speed goes with --serve")
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.serve is not None:
        return _serve(args, scenario)
    capture = None
    if args.capture:
        from ..capture.pcapng import CaptureError, CaptureWriter

        try:
            capture = CaptureWriter(args.capture)
        except CaptureError as exc:
            raise UsageError(str(exc)) from None
    try:
        result = run(scenario, engine=args.engine, capture=capture)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if capture is not None:
            capture.close()
    lines: list[dict[str, Any]] = list(result.ratings)
    if args.keys:
        lines += result.key_edges
    for line in lines:
        if args.json:
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        elif "score" in line:
            flags = " ".join(line["flags"])
            print(
                f"{line['at_ms']:>9} ms  {line['device']:<8} seq={line['seq']:<5} "
                f"score={line['score']}  staff={line['staff'] or '-':<8} "
                f"{'prompted' if line['prompted'] else 'unprompted'}"
                f"{'' if line['time_exact'] else ' (time approximate)'} {flags}".rstrip()
            )
        else:
            print(
                f"{line['at_ms']:>9} ms  {line['device']:<8} key {line['key']} "
                f"{'down' if line['down'] else 'up'}"
            )
    if not args.json:
        stats = ", ".join(f"{k}={v}" for k, v in sorted(result.stats.items()) if v)
        print(
            f"# {len(result.ratings)} ratings stored" + (f"; {stats}" if stats else ""),
            file=sys.stderr,
        )
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sim",
        help="run a scenario of simulated keypads on virtual time",
        description="Run SCENARIO (JSON or TOML) with simulated keypads running the real "
        "firmware, the real host session and a faulty link, on virtual time. Same scenario and "
        "seed give the same output.",
    )
    p.add_argument("scenario", metavar="SCENARIO", nargs="?", help="scenario file (.json or .toml)")
    p.add_argument(
        "--engine",
        choices=["cpython", "micropython"],
        default="cpython",
        help="where the firmware runs (default cpython)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per stored rating")
    p.add_argument("--keys", action="store_true", help="also one line per debounced key edge")
    p.add_argument("--capture", metavar="FILE", help="record the link traffic as pcapng")
    p.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="run the timeline on the wall clock instead, serving each keypad as "
        "tcp://HOST:PORT/ID to whatever host connects (port 0: a free one); exits after until_ms",
    )
    p.add_argument(
        "--speed",
        type=positive_float,
        metavar="X",
        help="with --serve: virtual time runs X times as fast as the wall clock (default 1)",
    )
    p.add_argument("--fleet", type=int, metavar="N", help="simulate N keypads over a working day")
    p.add_argument(
        "--hours",
        type=float,
        default=8.0,
        metavar="H",
        help="hours per keypad with --fleet (default 8)",
    )
    p.add_argument("--profile", metavar="FILE", help="behaviour profile (JSON or TOML) for --fleet")
    p.add_argument("--seed", type=int, default=1, help="random seed for --fleet (default 1)")
    p.add_argument("--db", metavar="PATH", help="with --fleet: store ratings in this agent store")
    p.set_defaults(func=cmd_sim)
