"""The rp2040 engine against real time: one keypad's service hour (the fleet's day profile) on the
real MicroPython Pico image in the emulated RP2040, next to the same scenario on the cpython
engine in the same run; and the cost of a boot (what every power-up and reboot adds).

    python bench/bench_rp2040.py [--hours 1] [--seed 3]

Target: the service hour runs at least as fast as real time (simulated / wall >= 1).
Needs $RATEPAD_MICROPYTHON_IMAGE (else ../shared/micropython-rp2 beside the checkout is used).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
from pathlib import Path

from ratepad.scenario import Runner, parse
from ratepad.scenario.fleet import HOUR, Profile, day_events
from ratepad.sim.rp2040 import IMAGE_ENV, missing

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "micropython-rp2"


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the emulator's Node
    process ends with its run)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault(IMAGE_ENV, str(SHARED / "micropython-v1.28.0-RPI_PICO.bin"))
    reason = missing()
    if reason is not None:
        raise SystemExit(reason)

    profile = Profile()
    events = day_events("K1", profile, args.hours, random.Random(args.seed), "S001")
    scenario = parse(
        {
            "seed": args.seed,
            "until_ms": int(args.hours * HOUR),
            "devices": [{"id": "K1", "keys": len(profile.scores), "config": profile.settings}],
            "events": events,
        },
        schema=False,
    )
    simulated = args.hours * 3600
    runs = {}
    walls = {}
    for engine in ("cpython", "rp2040"):
        t0, c0 = time.perf_counter(), _cpu()
        result = Runner(scenario, engine=engine).run()
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        runs[engine] = result
        walls[engine] = wall
        print(
            f"{engine} engine: {args.hours:g} simulated h of one keypad "
            f"({len(result.ratings)} ratings, {sum(1 for e in events if e['do'] == 'press')} "
            f"presses) in {wall:.1f} s wall ({cpu:.1f} s CPU, the emulator's included) = "
            f"{simulated / wall:,.1f}x real time"
        )
    real, base = runs["rp2040"].ratings, runs["cpython"].ratings
    keys = ("seq", "score", "staff", "prompted", "flags")
    same = [tuple(r[k] for k in keys) for r in real] == [tuple(r[k] for k in keys) for r in base]
    worst = max((abs(a["at_ms"] - b["at_ms"]) for a, b in zip(real, base, strict=False)), default=0)
    rate = simulated / walls["rp2040"]
    print(f"  rp2040 target >= 1x real time: {'met' if rate >= 1 else 'MISSED'} ({rate:.1f}x)")
    print(
        f"  ratings equal to the cpython engine's (seq, score, staff, prompted, flags): "
        f"{'yes' if same else 'NO'}; at_ms differs by at most {worst} ms"
    )

    # the cost of one boot: a scenario that only powers up (the keypad boots before time 0)
    boot = parse({"seed": 1, "until_ms": 1, "devices": [{"id": "B1"}], "events": []})
    t0 = time.perf_counter()
    Runner(boot, engine="rp2040").run()
    boot_s = time.perf_counter() - t0
    print(f"one boot to the device loop, with the emulator's start: {boot_s:.1f} s")


if __name__ == "__main__":
    main()
