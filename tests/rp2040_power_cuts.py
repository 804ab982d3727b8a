"""Power cuts at seeded random instructions of a workload on the real MicroPython binary (the
emulated Pico), shared by ``tests/test_rp2040_power_cut.py`` (a short sweep) and
``bench/bench_power_cuts.py`` (the full one): the workload, the cut points drawn over it, the
flash each cut leaves, the keypad that powers up on it, and what it must have kept.

How each cut stays cheap: a power cut leaves nothing but the flash (RAM, the watchdog's registers
and the host's link all start over), and the emulator is deterministic, so the keypad after a cut
at instruction i is the keypad that boots from the flash as the workload's erases and programs
left it at i (those finished before i, and the one under way torn as the emulator tears it). One
run of the workload records its flash operations; each cut's image is rebuilt from them, and
each distinct image is booted once: a sweep costs one boot per distinct image, not per cut.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ratepad.sim.rp2040 import Harness, flashfs
from ratepad.sim.rp2040.linked import LinkedPico
from ratepad.sim.rp2040.pico import EmulatedPico, replay_flash_ops
from ratepad.wire import codec
from ratepad.wire.stream import Frame

SETTINGS = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
SEED = 20261207
RATINGS = 4
STEPS = 16  # a flash operation's parts (chip.mjs OP_STEPS)

Where = tuple[int, int | None]  # (flash operations finished, step of the one torn or None)


@dataclass(frozen=True)
class Sweep:
    """How many cuts: at random instructions, inside each erase, inside sampled programs."""

    random_cuts: int
    cuts_per_erase: int
    torn_programs: int
    seed: int = SEED


# the bench's sweep; the test draws fewer cuts with the same code (see test_rp2040_power_cut.py)
FULL = Sweep(random_cuts=220, cuts_per_erase=4, torn_programs=6)


def ratings(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if isinstance(f.message, codec.Rating)]


def rating(frame: Frame) -> codec.Rating:
    assert isinstance(frame.message, codec.Rating)
    return frame.message


def run_workload(link: LinkedPico, arrivals: list[tuple[int, int]]) -> None:
    """Ratings on keys 1..RATINGS, each ACKed, with time for the ACK to reach the flash.
    ``arrivals``: (instructions executed by the end of a step, frames received by then)."""

    def note() -> None:
        arrivals.append((int(link.pico.state["instructions"]), len(link.frames)))

    link.on_step = note
    for k in range(RATINGS):
        link.press(1 << k, hold_ms=100)
        link.run_for(2500, step_ms=1)
    link.on_step = None


def start(harness: Harness, name: str) -> tuple[LinkedPico, bytes, int]:
    """A keypad booted to its session: the link, its flash then, instructions executed."""
    link = LinkedPico(EmulatedPico(harness, flashfs.fs_image("PC1", SETTINGS), name=name))
    link.run_until(lambda: link.hello is not None, 3000, 5)
    link.run_for(500)  # the boot's own writes are done
    return link, link.pico.fs_image(), int(link.pico.state["instructions"])


def where(cut: int, ops: list[dict[str, Any]]) -> Where:
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


def after_cut(harness: Harness, image: bytes, name: str) -> dict[str, Any]:
    """Power up on ``image``: the hello, every rating (re)sent, and a new rating's sequence."""
    link = LinkedPico(EmulatedPico(harness, image, name=name))
    link.run_until(lambda: link.hello is not None, 3000, 5)
    link.run_for(400)
    sent = ratings(link.frames)
    link.press(1 << 4, hold_ms=100)
    link.run_until(lambda: len(ratings(link.frames)) > len(sent), 3000)
    new = ratings(link.frames)[len(sent)]
    link.pico.close()
    assert link.hello is not None
    return {"acked": link.hello.acked_seq, "sent": sent, "new": rating(new).journal_seq}


@dataclass
class Workload:
    start_fs: bytes
    start: int
    ops: list[dict[str, Any]]
    arrivals: list[tuple[int, int]]
    frames: list[Frame]
    first: dict[int, Frame]
    cuts: list[int]
    where: dict[int, Where]
    erases: list[dict[str, Any]]

    def images(self) -> list[Where]:
        """The distinct flash states the cuts leave, in the order the workload reaches them."""
        return sorted(set(self.where.values()), key=lambda k: (k[0], -1 if k[1] is None else k[1]))


def make_workload(harness: Harness, sweep: Sweep) -> Workload:
    """The workload once, its flash operations, and ``sweep``'s cut points drawn over it."""
    ref, start_fs, begin = start(harness, "ref")
    ref.pico.record_flash_ops()
    arrivals: list[tuple[int, int]] = []
    run_workload(ref, arrivals)
    ops = ref.pico.flash_ops()
    end = int(ref.pico.state["instructions"])
    first: dict[int, Frame] = {}
    for f in ratings(ref.frames):
        first.setdefault(rating(f).journal_seq, f)
    assert sorted(first) == list(range(1, RATINGS + 1))
    erases = [op for op in ops if op["kind"] == "erase"]
    assert erases and len(erases) < len(ops), ops  # erases and programs
    cut_at = draw_cuts(ops, begin, end, sweep)
    at = {c: where(c, ops) for c in cut_at}
    return Workload(start_fs, begin, ops, arrivals, list(ref.frames), first, cut_at, at, erases)


def draw_cuts(ops: list[dict[str, Any]], begin: int, end: int, sweep: Sweep) -> list[int]:
    """``sweep``'s cut points over a workload that ran instructions ``begin`` .. ``end``."""
    erases = [op for op in ops if op["kind"] == "erase"]
    programs = [op for op in ops if op["kind"] == "program"]
    rng = random.Random(sweep.seed)
    cut_at = sorted(rng.randrange(begin, end) for _ in range(sweep.random_cuts))
    torn = [e for e in erases for _ in range(sweep.cuts_per_erase)]
    torn += rng.sample(programs, sweep.torn_programs)
    return cut_at + [op["instruction"] + rng.randrange(STEPS) for op in torn]


def boot_after(harness: Harness, w: Workload, key: Where) -> dict[str, Any]:
    """The keypad that powers up on the flash a cut at ``key`` leaves."""
    image = replay_flash_ops(harness, w.start_fs, w.ops, *key)
    return after_cut(harness, image, f"cut{key[0]}.{key[1]}")


def check_cut(w: Workload, cut: int, out: dict[str, Any]) -> None:
    """What the keypad that powered up after the cut at ``cut`` (``out``) must have kept."""
    frames_then = max((n for i, n in w.arrivals if i <= cut), default=0)
    sent_before = {rating(f).journal_seq for f in ratings(w.frames[:frames_then])}
    resent = {rating(f).journal_seq for f in out["sent"]}
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
        seq = rating(f).journal_seq
        assert f.message == w.first[seq].message, (cut, f.message, w.first[seq].message)
        want = codec.HeaderFlags.RETRANSMIT if seq in seen else codec.HeaderFlags(0)
        assert f.flags == want, (cut, seq, f.flags)
        seen.add(seq)
