"""The journal across power cuts on the real MicroPython binary: the power fails at seeded random
instructions of a workload (ratings, ACKs, the journal's writes to littlefs), some of them in the
middle of a flash erase or program, and the keypad that powers up again has lost nothing it had
sent, reuses no sequence number, and re-sends each unACKed rating exactly as it first sent it.

The sweep here is a short one (``SWEEP``: every kind of cut, a few of each); the same code runs
the full sweep, with its figures, in ``bench/bench_power_cuts.py``. How the cuts stay cheap (one
boot per distinct flash image, not per cut) is in ``rp2040_power_cuts.py``. One cut is also made
for real, inside an erase, to show the rebuilt image is the one a real cut leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import rp2040_power_cuts as cuts
from test_rp2040_engine import use_shared_image

from ratepad.sim.rp2040 import Harness, missing
from ratepad.sim.rp2040.pico import replay_flash_ops

# random cuts mostly land between flash operations (an operation takes 16 of ~18 million
# instructions): these few already reach most of the states between them that the full sweep
# reaches; torn erases and programs are drawn as the full sweep draws them, fewer
SWEEP = cuts.Sweep(random_cuts=30, cuts_per_erase=2, torn_programs=3)
PARTS = 7  # the cuts' images are booted in this many tests: two or so each, well within
# pytest's timeout on a loaded machine (a boot takes seconds, a minute when it is busy)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        reason = missing()
        if reason is not None:
            pytest.skip(reason)
        with Harness() as h:
            yield h


@pytest.fixture(scope="module")
def workload(harness: Harness) -> cuts.Workload:
    """The workload once, its flash operations, and the cut points drawn over it."""
    return cuts.make_workload(harness, SWEEP)


def test_the_cut_points(workload: cuts.Workload) -> None:
    w = workload
    inside = [c for c in w.cuts if w.where[c][1] is not None]
    in_erases = [c for c in inside if w.ops[w.where[c][0]]["kind"] == "erase"]
    assert len(in_erases) >= SWEEP.cuts_per_erase
    assert len(inside) - len(in_erases) >= SWEEP.torn_programs
    between = {k for k in w.where.values() if k[1] is None}
    assert len(between) > 1, "the random cuts reach more than one state between operations"


@pytest.mark.parametrize("part", range(PARTS))
def test_the_journal_survives_power_cuts_at_random_instructions(
    harness: Harness, workload: cuts.Workload, part: int
) -> None:
    w = workload
    mine = w.images()[part::PARTS]
    outcomes: dict[cuts.Where, dict[str, Any]] = {k: cuts.boot_after(harness, w, k) for k in mine}
    for cut in (c for c in w.cuts if w.where[c] in outcomes):
        cuts.check_cut(w, cut, outcomes[w.where[cut]])


def test_a_real_cut_leaves_the_rebuilt_flash(harness: Harness, workload: cuts.Workload) -> None:
    """One cut made for real, in the middle of an erase: the flash it leaves is the one the
    other tests rebuild from the operation log."""
    w = workload
    real, real_fs, real_start = cuts.start(harness, "real")
    assert (real_fs, real_start) == (w.start_fs, w.start)  # the same keypad, to the instruction
    cut = w.erases[0]["instruction"] + cuts.STEPS // 2
    real.pico.cut_at(cut)
    cuts.run_workload(real, [])
    assert not real.pico.powered
    rebuilt = replay_flash_ops(harness, w.start_fs, w.ops, *cuts.where(cut, w.ops))
    assert real.pico.fs_image() == rebuilt
