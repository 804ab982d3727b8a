"""`ratepad sim SCENARIO...`: run scenario files on virtual time (contract: architecture.md,
format: docs/scenarios.md); suites with expectations, JUnit XML and reports; fleets."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ToolError
from ..scenario import Scenario, ScenarioError, run
from ..scenario.timeline import ENGINES
from .common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError, positive_float

MAX_SEED = 2**63 - 1


def _seed(text: str) -> int:
    if len(text) > 20:
        raise argparse.ArgumentTypeError(f"expected an integer 0..{MAX_SEED}, got {text[:20]}...")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer 0..{MAX_SEED}, got {text}")
    return value


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer {low}..{high}, got {text[:20]!r}"
            )
        return value

    return parse


def _progress(total: int, unit: str) -> Any:
    """A tqdm progress bar on stderr, off when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False
    )


def _check_engine(engine: str) -> None:
    if engine == "micropython":
        from ..sim.mpkeypad import vm_missing

        reason = vm_missing()
        if reason is not None:
            raise UsageError(reason)
    elif engine == "rp2040":
        from ..sim.rp2040 import missing

        reason = missing()
        if reason is not None:
            raise UsageError(reason)


def _write(path: str, data: bytes | str, what: str) -> None:
    try:
        if isinstance(data, str):
            Path(path).write_text(data, encoding="utf-8")
        else:
            Path(path).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None


def _write_report(path: str, report: dict[str, Any]) -> None:
    """``--report FILE.html``: the page, and its figures as JSON next to it (FILE.json)."""
    from ..scenario.report import html

    _write(path, html(report), "report")
    _write(str(Path(path).with_suffix(".json")), json.dumps(report, indent=1) + "\n", "report")


def _fleet(args: argparse.Namespace) -> int:
    import time

    from ..scenario.fleet import Profile, ProfileError, check_size, run_fleet

    if args.scenarios:
        raise UsageError("give either SCENARIO or --fleet, not both")
    if args.junit:
        raise UsageError("--junit goes with scenario files, not --fleet")
    try:
        check_size(args.fleet, args.hours)
        profile = Profile.load(args.profile)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    sink = None
    store = None
    if args.db:
        from ..agent.store import Store
        from ..scenario.sink import store_ratings

        store = Store(args.db)
        sink = functools.partial(store_ratings, store)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    bar = _progress(args.fleet, "keypad")
    try:
        result = run_fleet(
            args.fleet,
            args.hours,
            profile,
            seed=args.seed,
            sink=sink,
            engine=args.engine,
            jobs=args.jobs,
            progress=bar.update,
        )
    except ToolError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
        if store is not None:
            store.close()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    summary = {
        "keypads": result.keypads,
        "hours": result.hours,
        "prompts": result.prompts,
        "ratings": result.ratings,
        "jobs": args.jobs,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),  # this process only
        "simulated_ratings_per_s": round(result.ratings / wall, 1) if wall else None,
        "simulated_keypad_hours_per_s": round(result.keypads * result.hours / wall, 1),
    }
    if args.report:
        _write_report(args.report, result.report)
    if args.json:
        print(json.dumps({**summary, "report": result.report}))
    else:
        r = result.report
        for k, v in summary.items():
            print(f"{k:<30} {v}")
        for k in ("response_rate", "satisfaction_index", "csat", "mean_score"):
            print(f"{k:<30} {r[k]}")
        for group in ("misuse", "faults", "recoveries"):
            print(f"{group:<30} " + ", ".join(f"{k}={v}" for k, v in r[group].items()))
        if args.report:
            print(f"{'report':<30} {args.report}")
    return EXIT_OK


def _serve(args: argparse.Namespace, scenario: Scenario) -> int:
    """``--serve``: the timeline on the wall clock, each keypad at ``tcp://HOST:PORT/ID``."""
    from ..scenario.serve import ScenarioServer, parse_address, skipped_notes

    for option in ("keys", "capture", "junit", "report"):
        if getattr(args, option):
            raise UsageError(f"--{option} does not go with --serve")
    speed = 1.0 if args.speed is None else args.speed
    try:
        server = ScenarioServer(scenario, parse_address(args.serve), speed, args.engine)
    except (ScenarioError, ToolError) as exc:
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


def _suite(args: argparse.Namespace, scenarios: list[Any]) -> int:
    """Several scenarios (or a folder): one pass/fail line each; exit 1 if any failed, 2 if a
    file was not a valid scenario (after running the others)."""
    from ..scenario.suite import junit_xml, run_suite, suite_report

    for option in ("keys", "capture"):
        if getattr(args, option):
            raise UsageError(f"--{option} goes with one SCENARIO, not a suite")
    bar = _progress(len(scenarios), "scenario")

    def line(o: Any) -> None:
        bar.update(1)
        if args.json:
            obj = {"scenario": o.name, "file": o.source, "passed": o.passed}
            obj |= {"failures": o.failures, "ratings": o.ratings}
            obj |= {} if o.error is None else {"error": o.error}
            bar.write(json.dumps(obj, ensure_ascii=False), file=sys.stdout)
        elif o.error is not None:
            bar.write(f"ERROR {o.source}: {o.error}", file=sys.stdout)
        else:
            verdict = "PASS" if o.passed else "FAIL"
            text = f"{verdict} {o.name} ({o.ratings} ratings, {o.seconds:.2f} s)"
            if o.failures:
                text += ": " + "; ".join(o.failures)
            bar.write(text, file=sys.stdout)

    try:
        outcomes = run_suite(scenarios, args.engine, args.jobs, progress=line)
    except (ScenarioError, ToolError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    failed = [o for o in outcomes if not o.passed]
    if args.junit:
        _write(args.junit, junit_xml(outcomes), "JUnit file")
    if args.report:
        _write_report(args.report, suite_report(outcomes))
    invalid = sum(1 for o in failed if o.error is not None)
    summary = f"# {len(outcomes) - len(failed)} passed, {len(failed) - invalid} failed"
    print(summary + (f", {invalid} invalid" if invalid else ""), file=sys.stderr, flush=True)
    return EXIT_USAGE if invalid else EXIT_PROBLEMS if failed else EXIT_OK


def cmd_sim(args: argparse.Namespace) -> int:
    if args.schema:
        from ..scenario.schema import SCENARIO_SCHEMA

        print(json.dumps(SCENARIO_SCHEMA, indent=2))
        return EXIT_OK
    _check_engine(args.engine)
    if args.fleet is not None and (args.serve is not None or args.speed is not None):
        raise UsageError("--serve and --speed go with a SCENARIO, not --fleet")
    if args.fleet is not None:
        return _fleet(args)
    if not args.scenarios:
        raise UsageError("give a SCENARIO file (or folder), or --fleet N --hours H")
    if args.speed is not None and args.serve is None:
        raise UsageError("--speed goes with --serve")
    from ..scenario.suite import collect, load_all, load_each

    try:
        paths = collect(args.scenarios)
        suite = len(args.scenarios) > 1 or Path(args.scenarios[0]).is_dir()
        if suite and args.serve is None:  # an invalid file is one failed test: the rest run
            return _suite(args, load_each(paths))
        scenarios = load_all(paths)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.serve is not None:
        if len(scenarios) != 1:
            raise UsageError("--serve takes one SCENARIO")
        return _serve(args, scenarios[0])
    return _single(args, scenarios[0])


def _single(args: argparse.Namespace, scenario: Scenario) -> int:
    """One scenario: its stored ratings (and key edges), then its expectations, if any."""
    from ..scenario.expect import check

    capture = None
    if args.capture:
        from ..capture.pcapng import CaptureError, CaptureWriter

        try:
            capture = CaptureWriter(args.capture)
        except CaptureError as exc:
            raise UsageError(str(exc)) from None
    try:
        result = run(scenario, engine=args.engine, capture=capture)
    except (ScenarioError, ToolError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        if capture is not None:
            capture.close()
    lines: list[dict[str, Any]] = list(result.ratings)
    if args.keys:
        lines += result.key_edges
    out = []
    for line in lines:
        if args.json:
            out.append(json.dumps(line, ensure_ascii=False))
        elif "score" in line:
            flags = " ".join(line["flags"])
            out.append(
                f"{line['at_ms']:>9} ms  {line['device']:<8} seq={line['seq']:<5} "
                f"score={line['score']}  staff={line['staff'] or '-':<8} "
                f"{'prompted' if line['prompted'] else 'unprompted'}"
                f"{'' if line['time_exact'] else ' (time approximate)'} {flags}".rstrip()
            )
        else:
            out.append(
                f"{line['at_ms']:>9} ms  {line['device']:<8} key {line['key']} "
                f"{'down' if line['down'] else 'up'}"
            )
    if out:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()
    if not args.json:
        stats = ", ".join(f"{k}={v}" for k, v in sorted(result.stats.items()) if v)
        print(
            f"# {len(result.ratings)} ratings stored" + (f"; {stats}" if stats else ""),
            file=sys.stderr,
        )
    failures = check(scenario, result)
    if scenario.expect or args.junit or args.report:
        from ..scenario.suite import Outcome, junit_xml, prompts, suite_report

        if args.junit or args.report:
            from ..scenario.report import keypad_summary

            keypads = [
                keypad_summary(d.id, result, prompts(scenario, d.id), d.keys)
                for d in scenario.devices
            ]
            outcome = Outcome(
                scenario.name,
                scenario.source,
                failures,
                len(result.ratings),
                0.0,
                keypads,
                dict(result.stats),
                result.latency_ms,
            )
            if args.junit:
                _write(args.junit, junit_xml([outcome]), "JUnit file")
            if args.report:
                _write_report(args.report, suite_report([outcome]))
        verdict = "PASS" if not failures else "FAIL"
        print(
            f"# {verdict} {scenario.name}" + (": " + "; ".join(failures) if failures else ""),
            file=sys.stderr,
        )
    return EXIT_PROBLEMS if failures else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sim",
        help="run scenarios of simulated keypads on virtual time (suites, fleets)",
        description="Run SCENARIO files (JSON or TOML; folders: every scenario in them) with "
        "simulated keypads running the real firmware, the real host session and a faulty "
        "link, on virtual time. Same scenario and seed give the same output. One scenario "
        "prints its stored ratings; several print a PASS/FAIL line each from their `expect` "
        "sections. Exit status 1 if an expectation failed, 2 for bad input.",
    )
    p.add_argument(
        "scenarios",
        metavar="SCENARIO",
        nargs="*",
        help="scenario files (.json or .toml) or folders of them",
    )
    p.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of scenario files and exit"
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="cpython",
        help="where the firmware runs: its core on CPython (default) or on the MicroPython VM, "
        "or all of it on MicroPython's Pico image in an emulated RP2040 (needs "
        "$RATEPAD_MICROPYTHON_IMAGE)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--keys", action="store_true", help="also one line per debounced key edge")
    p.add_argument("--capture", metavar="FILE", help="record the link traffic as pcapng")
    p.add_argument("--junit", metavar="FILE", help="write the scenarios' outcome as JUnit XML")
    p.add_argument(
        "--report",
        metavar="FILE.html",
        help="write a report (HTML page with plots, and FILE.json) of the suite or fleet",
    )
    p.add_argument(
        "--jobs",
        type=_count(1, 256),
        default=1,
        metavar="N",
        help="run a suite or fleet in N processes (same output as one)",
    )
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
    p.add_argument(
        "--fleet",
        type=_count(1, 1_000_000),
        metavar="N",
        help="simulate N keypads over a working day",
    )
    p.add_argument(
        "--hours",
        type=positive_float,
        default=8.0,
        metavar="H",
        help="hours per keypad with --fleet (default 8)",
    )
    p.add_argument("--profile", metavar="FILE", help="behaviour profile (JSON or TOML) for --fleet")
    p.add_argument("--seed", type=_seed, default=1, help="random seed for --fleet (default 1)")
    p.add_argument("--db", metavar="PATH", help="with --fleet: store ratings in this agent store")
    p.set_defaults(func=cmd_sim)
