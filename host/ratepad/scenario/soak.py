"""Soak scenarios: many ratings under every fault kind, and the check that nothing was lost.

python -m ratepad.scenario.soak --devices 30 --presses 3500   # >= 100,000 ratings
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from .model import parse
from .runner import Result, Runner

ALL_FAULTS = {
    "drop": 0.03,
    "corrupt": 0.02,
    "duplicate": 0.02,
    "reorder": 0.02,
    "split": 0.05,
    "stall": 0.01,
}


def soak_scenario(
    seed: int, presses: int, devices: int = 3, faults: dict[str, float] | None = None
) -> dict[str, Any]:
    """Presses spread over ``devices`` keypads with prompts, power cuts, cable pulls, power
    cycles, host restarts and a host clock jump, on a link with every fault kind."""
    rng = random.Random(seed)
    devs: list[dict[str, Any]] = [
        {
            "id": f"K{i + 1}",
            "config": {
                "debounce_ms": 5,
                "chord_ms": 30,
                "repeat_guard_ms": 500,
                "thanks_ms": 300,
                "ack_timeout_ms": 1000,
            },
        }
        for i in range(devices)
    ]
    if devices > 1:
        devs[1]["ticks_start_ms"] = (1 << 30) - 20_000  # this keypad's ticks_ms wraps early
    events: list[dict[str, Any]] = [{"at_ms": 0, "device": d["id"], "do": "connect"} for d in devs]
    per_device_gap = max(700 // max(devices // 3, 1), 60)
    t = 1000
    for n in range(presses):
        t += rng.randrange(per_device_gap, 2 * per_device_gap)
        dev = rng.choice(devs)["id"]
        roll = rng.random()
        if roll < 0.5:
            events.append(
                {
                    "at_ms": t - 50,
                    "device": dev,
                    "do": "prompt",
                    "staff": f"S{n % 100:02d}",
                    "timeout_ms": 20000,
                }
            )
        events.append(
            {
                "at_ms": t,
                "device": dev,
                "do": "press",
                "score": rng.randrange(1, 6),
                "hold_ms": rng.randrange(60, 300),
                "bounce_ms": rng.randrange(0, 4),
            }
        )
        if roll > 0.97:
            events.append({"at_ms": t + 1, "device": dev, "do": "power_cut"})
        elif roll > 0.95:
            events.append({"at_ms": t + 400, "device": dev, "do": "disconnect"})
            events.append({"at_ms": t + 5000, "device": dev, "do": "connect"})
        elif roll > 0.94:
            events.append({"at_ms": t + 400, "device": dev, "do": "power_cycle"})
        elif roll > 0.935:
            events.append({"at_ms": t + 300, "do": "host_restart"})
    events.sort(key=lambda e: e["at_ms"])
    return {
        "seed": seed,
        "until_ms": t + 180_000,
        "devices": devs,
        "link": dict(ALL_FAULTS if faults is None else faults),
        "events": events,
    }


def verify(runner: Runner, result: Result, check_times: bool = True) -> list[str]:
    """Problems found: lost or duplicated confirmed ratings, and ratings marked exact whose
    time is not the moment their key went down."""
    problems = []
    stored = {(r["device"], r["seq"]) for r in result.ratings}
    if len(stored) != len(result.ratings):
        problems.append("duplicates in the store")
    for dev in runner.devices.values():
        confirmed = set(range(1, dev.keypad.journal_next_seq()))  # every rating thanked for
        got = {seq for (d, seq) in stored if d == dev.id}
        if got != confirmed:
            problems.append(
                f"{dev.id}: lost {sorted(confirmed - got)[:10]}, "
                f"extra {sorted(got - confirmed)[:10]}"
            )
    if not check_times:
        return problems
    downs = {(e["device"], e["at_ms"]) for e in result.key_edges if e["down"]}
    wrong = [
        r for r in result.ratings if r["time_exact"] and (r["device"], r["at_ms"]) not in downs
    ]
    if wrong:
        problems.append(f"{len(wrong)} exact times that are not the press time, e.g. {wrong[0]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=30)
    ap.add_argument("--presses", type=int, default=3500, help="per device")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    faults = dict(ALL_FAULTS)
    t0 = time.perf_counter()
    scenario = soak_scenario(args.seed, args.presses * args.devices, args.devices, faults)
    runner = Runner(parse(scenario, schema=False))  # made here, by soak_scenario
    result = runner.run(progress=True)
    wall = time.perf_counter() - t0
    problems = verify(runner, result)
    exact = sum(1 for r in result.ratings if r["time_exact"])
    print(
        f"{len(result.ratings):,} ratings stored from {args.devices} keypads in {wall:.1f} s; "
        f"{exact:,} with exact times; faults: "
        + ", ".join(f"{k}={v}" for k, v in sorted(result.stats.items()))
    )
    for p in problems:
        print("PROBLEM:", p)
    print("zero lost, zero duplicated, exact times: " + ("yes" if not problems else "NO"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
