"""The journal across power cuts on the real MicroPython binary: the power fails at seeded random
instructions of a workload (ratings, ACKs, the journal's writes to littlefs), several of them in
the middle of a flash erase or program, and the keypad that powers up again has lost nothing it
had sent, reuses no sequence number, and re-sends each unACKed rating exactly as it first sent it.

How each cut stays cheap: a power cut leaves nothing but the flash (RAM, the watchdog's registers
and the host's link all start over), and the emulator is deterministic, so the keypad after a cut
at instruction i is the keypad that boots from the flash as the workload's erases and programs
left it at i (those finished before i, and the one under way torn as the emulator tears it). One
run of the workload records its flash operations; each cut's image is rebuilt from them, and
each distinct image is booted once. One cut is also made for real, inside an erase, to show the
rebuilt image is the one a real cut leaves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from test_rp2040_engine import use_shared_image

from ratepad.sim.rp2040 import Harness, flashfs, missing
from ratepad.sim.rp2040.linked import LinkedPico
from ratepad.sim.rp2040.pico import EmulatedPico, replay_flash_ops
from ratepad.wire import codec
from ratepad.wire.stream import Frame

SETTINGS = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
SEED = 20261207
RANDOM_CUTS = 220
CUTS_PER_ERASE = 4
TORN_PROGRAMS = 6
RATINGS = 4
STEPS = 16  # a flash operation's parts (chip.mjs OP_STEPS)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        reason = missing()
        if reason is not None:
            pytest.skip(reason)
        with Harness() as h:
            yield h


def _ratings(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if isinstance(f.message, codec.Rating)]


def _rating(frame: Frame) -> codec.Rating:
    assert isinstance(frame.message, codec.Rating)
    return frame.message


def _workload(link: LinkedPico, arrivals: list[tuple[int, int]]) -> None:
    """Ratings on keys 1..RATINGS, each ACKed, with time for the ACK to reach the flash.
    ``arrivals``: (instructions executed by the end of a step, frames received by then)."""

    def note() -> None:
        arrivals.append((int(link.pico.state["instructions"]), len(link.frames)))

    link.on_step = note
    for k in range(RATINGS):
        link.press(1 << k, hold_ms=100)
        link.run_for(2500, step_ms=1)
    link.on_step = None


def _start(harness: Harness, name: str) -> tuple[LinkedPico, bytes, int]:
    link = LinkedPico(EmulatedPico(harness, flashfs.fs_image("PC1", SETTINGS), name=name))
    link.run_until(lambda: link.hello is not None, 3000, 5)
    link.run_for(500)  # the boot's own writes are done
    return link, link.pico.fs_image(), int(link.pico.state["instructions"])


def _where(cut: int, ops: list[dict[str, Any]]) -> tuple[int, int | None]:
    """(operations finished, step of the one torn or None) for a cut at instruction ``cut``:
    an operation begun at instruction n takes the slots n .. n+15 (chip.mjs)."""
    done = 0
    for op in ops:
        n = op["instruction"]
        if cut < n:
            return done, None
        if cut < n + STEPS:
            return done, cut - n
        done += 1
    return done, None


def _after_cut(harness: Harness, image: bytes, name: str) -> dict[str, Any]:
    """Power up on ``image``: the hello, every rating (re)sent, and a new rating's sequence."""
    link = LinkedPico(EmulatedPico(harness, image, name=name))
    link.run_until(lambda: link.hello is not None, 3000, 5)
    link.run_for(400)
    sent = _ratings(link.frames)
    link.press(1 << 4, hold_ms=100)
    link.run_until(lambda: len(_ratings(link.frames)) > len(sent), 3000)
    new = _ratings(link.frames)[len(sent)]
    link.pico.close()
    assert link.hello is not None
    return {"acked": link.hello.acked_seq, "sent": sent, "new": _rating(new).journal_seq}


PARTS = 3  # the cuts' images are booted in this many tests (each within pytest's timeout)


@dataclass
class Workload:
    start_fs: bytes
    start: int
    ops: list[dict[str, Any]]
    arrivals: list[tuple[int, int]]
    frames: list[Frame]
    first: dict[int, Frame]
    cuts: list[int]
    where: dict[int, tuple[int, int | None]]
    erases: list[dict[str, Any]]


@pytest.fixture(scope="module")
def workload(harness: Harness) -> Workload:
    """The workload once, its flash operations, and the cut points drawn over it."""
    ref, start_fs, start = _start(harness, "ref")
    ref.pico.record_flash_ops()
    arrivals: list[tuple[int, int]] = []
    _workload(ref, arrivals)
    ops = ref.pico.flash_ops()
    end = int(ref.pico.state["instructions"])
    first: dict[int, Frame] = {}
    for f in _ratings(ref.frames):
        first.setdefault(_rating(f).journal_seq, f)
    assert sorted(first) == list(range(1, RATINGS + 1))
    erases = [op for op in ops if op["kind"] == "erase"]
    programs = [op for op in ops if op["kind"] == "program"]
    assert erases and programs, ops
    rng = random.Random(SEED)
    cuts = sorted(rng.randrange(start, end) for _ in range(RANDOM_CUTS))
    torn = [e for e in erases for _ in range(CUTS_PER_ERASE)]
    torn += rng.sample(programs, TORN_PROGRAMS)
    cuts += [op["instruction"] + rng.randrange(STEPS) for op in torn]
    where = {c: _where(c, ops) for c in cuts}
    return Workload(start_fs, start, ops, arrivals, list(ref.frames), first, cuts, where, erases)


def test_the_cut_points(workload: Workload) -> None:
    w = workload
    assert len(w.cuts) >= 200
    inside = [c for c in w.cuts if w.where[c][1] is not None]
    in_erases = [c for c in inside if w.ops[w.where[c][0]]["kind"] == "erase"]
    assert len(in_erases) >= CUTS_PER_ERASE and len(inside) - len(in_erases) >= TORN_PROGRAMS


@pytest.mark.parametrize("part", range(PARTS))
def test_the_journal_survives_power_cuts_at_random_instructions(
    harness: Harness, workload: Workload, part: int
) -> None:
    w = workload
    keys = sorted(set(w.where.values()), key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    mine = set(keys[part::PARTS])
    outcomes: dict[tuple[int, int | None], dict[str, Any]] = {}
    for key in sorted(mine, key=keys.index):
        image = replay_flash_ops(harness, w.start_fs, w.ops, *key)
        outcomes[key] = _after_cut(harness, image, f"cut{key[0]}.{key[1]}")

    for cut in (c for c in w.cuts if w.where[c] in mine):
        out = outcomes[w.where[cut]]
        frames_then = max((n for i, n in w.arrivals if i <= cut), default=0)
        sent_before = {_rating(f).journal_seq for f in _ratings(w.frames[:frames_then])}
        resent = {_rating(f).journal_seq for f in out["sent"]}
        # nothing it had sent is lost: ACKed (the ACK reached the flash) or sent again
        lost = {s for s in sent_before if s > out["acked"] and s not in resent}
        assert not lost, (cut, w.where[cut], lost, out["acked"])
        # no sequence number reused
        top = max(sent_before | resent | {out["acked"]})
        assert out["new"] == top + 1, (cut, w.where[cut], out["new"], top)
        # each rating sent again is the one first sent, field for field; flags: RETRANSMIT
        # only for a frame this boot has sent before (RAM does not outlive the cut)
        seen: set[int] = set()
        for f in out["sent"]:
            seq = _rating(f).journal_seq
            assert f.message == w.first[seq].message, (cut, f.message, w.first[seq].message)
            want = codec.HeaderFlags.RETRANSMIT if seq in seen else codec.HeaderFlags(0)
            assert f.flags == want, (cut, seq, f.flags)
            seen.add(seq)


def test_a_real_cut_leaves_the_rebuilt_flash(harness: Harness, workload: Workload) -> None:
    """One cut made for real, in the middle of an erase: the flash it leaves is the one the
    other tests rebuild from the operation log."""
    w = workload
    real, real_fs, real_start = _start(harness, "real")
    assert (real_fs, real_start) == (w.start_fs, w.start)  # the same keypad, to the instruction
    cut = w.erases[0]["instruction"] + STEPS // 2
    real.pico.cut_at(cut)
    _workload(real, [])
    assert not real.pico.powered
    assert real.pico.fs_image() == replay_flash_ops(harness, w.start_fs, w.ops, *_where(cut, w.ops))
