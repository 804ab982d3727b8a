"""Simulator throughput: fleets (cpython engine, one process and --jobs N) and the MicroPython
engine.

    python bench/bench_sim.py [--fleet 1000] [--hours 8] [--jobs 2] [--mp-minutes 10]

Fleet targets: 1,000 keypads x 8 hours in at most 60 s on one core (cpython engine), and in at
most 30 s with ``--jobs 2``, with the same report as the one-process run of the same seed.
Baseline measured in the same run: the host codec alone encoding and decoding as many rating
frames as the fleet stored (the least work any simulation of those ratings must do).
"""

from __future__ import annotations

import argparse
import time

from ratepad.scenario import Runner, parse
from ratepad.scenario.fleet import Profile, day_events, run_fleet
from ratepad.wire import codec


def baseline(n: int) -> float:
    msg = codec.Rating(1, 1, 1000, None, 5, 5, 7, codec.RatingFlags(0), "S001")
    t0 = time.perf_counter()
    for i in range(n):
        codec.decode_frame(codec.encode(msg, i & 0xFFFF))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mp-minutes", type=float, default=10.0, help="0: skip the engines")
    args = ap.parse_args()

    t0 = time.perf_counter()
    parallel = run_fleet(args.fleet, args.hours, seed=args.seed, jobs=args.jobs)
    wall_n = time.perf_counter() - t0
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = run_fleet(args.fleet, args.hours, seed=args.seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    same = parallel.report == result.report and parallel.stats == result.stats
    print(
        f"fleet --jobs {args.jobs}: {wall_n:.1f} s wall; target <= 30 s: "
        f"{'met' if wall_n <= 30 else 'MISSED'}; report identical to one process: "
        f"{'yes' if same else 'NO'}; speed-up {wall / wall_n:.2f}x"
    )
    base = baseline(result.ratings)
    print(
        f"fleet: {args.fleet:,} keypads x {args.hours:g} h: {result.ratings:,} ratings "
        f"({result.prompts:,} prompts) in {wall:.1f} s wall, {cpu:.1f} s CPU"
    )
    print(
        f"  simulated ratings/s: {result.ratings / wall:,.0f}; keypad-hours/s: "
        f"{args.fleet * args.hours / wall:,.1f}; target <= 60 s: "
        f"{'met' if wall <= 60 else 'MISSED'}"
    )
    print(
        f"  baseline (codec encode+decode of {result.ratings:,} ratings): {base:.2f} s "
        f"-> the simulation costs {wall / base:.1f}x the bare codec work"
    )

    minutes = args.mp_minutes
    if not minutes:
        return
    events = day_events("K1", Profile(), minutes / 60, __import__("random").Random(3), "S001")
    scenario = parse(
        {
            "seed": 3,
            "until_ms": int(minutes * 60_000),
            "devices": [{"id": "K1", "config": {"debounce_ms": 10}}],
            "events": events,
        }
    )
    for engine in ("cpython", "micropython"):
        t0 = time.perf_counter()
        r = Runner(scenario, engine=engine).run()
        wall = time.perf_counter() - t0
        print(
            f"{engine} engine: {minutes:g} simulated minutes of one keypad "
            f"({len(r.ratings)} ratings) in {wall:.2f} s = "
            f"{minutes * 60 / wall:,.0f} simulated s per wall s"
        )


if __name__ == "__main__":
    main()
