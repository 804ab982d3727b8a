"""The journal across power cuts, the full sweep: the test (tests/test_rp2040_power_cut.py) runs a
short one; this runs the same code over every cut of the full sweep (220 random instructions,
4 cuts in each flash erase, 6 torn programs) and prints what it covered, what it cost and every
cut whose keypad lost, reused or changed a rating.

    python bench/bench_power_cuts.py [--random-cuts 220] [--cuts-per-erase 4]
                                     [--torn-programs 6] [--seed 20261207]

Exit 1 if any cut breaks the journal's promise. Needs Node.js, rp2040js and the MicroPython
image ($RATEPAD_MICROPYTHON_IMAGE, else ../shared/micropython-rp2 beside the checkout).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import rp2040_power_cuts as cuts  # noqa: E402

from ratepad.sim.rp2040 import IMAGE_ENV, Harness, missing  # noqa: E402

SHARED = ROOT.parent / "shared" / "micropython-rp2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random-cuts", type=int, default=cuts.FULL.random_cuts)
    ap.add_argument("--cuts-per-erase", type=int, default=cuts.FULL.cuts_per_erase)
    ap.add_argument("--torn-programs", type=int, default=cuts.FULL.torn_programs)
    ap.add_argument("--seed", type=int, default=cuts.SEED)
    args = ap.parse_args()
    os.environ.setdefault(IMAGE_ENV, str(SHARED / "micropython-v1.28.0-RPI_PICO.bin"))
    reason = missing()
    if reason is not None:
        raise SystemExit(reason)
    sweep = cuts.Sweep(args.random_cuts, args.cuts_per_erase, args.torn_programs, args.seed)

    with Harness() as harness:
        t0 = time.perf_counter()
        w = cuts.make_workload(harness, sweep)
        workload_s = time.perf_counter() - t0
        images = w.images()
        torn = [k for k in images if k[1] is not None]
        print(
            f"workload: {cuts.RATINGS} ratings, {len(w.ops)} flash operations "
            f"({len(w.erases)} erases), {w.ops[-1]['instruction'] - w.start:,} instructions; "
            f"booted and run in {workload_s:.1f} s (the baseline: one boot and the workload)"
        )
        print(
            f"cuts: {len(w.cuts)} ({sweep.random_cuts} random, seed {sweep.seed}; "
            f"{sweep.cuts_per_erase} per erase; {sweep.torn_programs} torn programs) -> "
            f"{len(images)} distinct flash images ({len(torn)} torn mid-operation, "
            f"{len(images) - len(torn)} between operations)"
        )
        broken: list[str] = []
        t0 = time.perf_counter()
        for key in images:
            out = cuts.boot_after(harness, w, key)
            for cut in (c for c in w.cuts if w.where[c] == key):
                try:
                    cuts.check_cut(w, cut, out)
                except AssertionError as exc:
                    broken.append(f"cut at {cut:,} {key}: {exc}")
        boots_s = time.perf_counter() - t0
    print(
        f"booted {len(images)} images in {boots_s:.1f} s ({boots_s / len(images):.1f} s each); "
        f"cuts checked: {len(w.cuts)}, broken: {len(broken)}"
    )
    for line in broken:
        print("  BROKEN", line)
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
