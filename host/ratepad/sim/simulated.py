"""A simulated keypad: the real firmware core (firmware/rpfw) with fake pins, LEDs and flash.

``SimulatedKeypad`` runs on a clock the caller gives (virtual time: scenarios, fleets, tests).
``RealtimeKeypad`` drives one on the wall clock in a background thread (the ``sim://``
transport, ``--serve``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from ..tools import fwsource as _firmware

PERIOD = 1 << 30  # MicroPython's ticks_ms wraps here


class SimulatedKeypad:
    """One keypad on a virtual clock (milliseconds, any integer; the firmware sees ticks_ms).

    A typed face on ``firmware/sim/simkeypad.py``, the simulated keypad that both engines run
    (CPython here; the MicroPython engine runs the same file on the MicroPython VM).

    Flash: in memory by default; ``storage_dir`` keeps it in a folder (the journal outlives the
    process); ``flash="pico"`` or ``"pico_w"`` puts it on the real littlefs (littlefs-python)
    with that board's geometry.
    """

    def __init__(
        self,
        device_id: str = "K1",
        *,
        settings: Mapping[str, Any] | None = None,
        now_ms: int = 0,
        ticks_offset: int = 0,
        storage_dir: str | None = None,
        flash: str | None = None,
    ) -> None:
        values = {"serial": device_id, **dict(settings or {})}
        text = "".join(f"{k}={v}\n" for k, v in values.items()).encode()
        storage = None
        if storage_dir is not None:  # flash in a folder: the journal outlives this process
            storage = _firmware.load("rpfw.storage").FileStorage(storage_dir)
        elif flash is not None:
            storage = _firmware.load("sim.lfsstorage").board_storage(flash)
        self._kp: Any = _firmware.load("sim.simkeypad").SimKeypad(
            device_id, text, now_ms, ticks_offset, storage
        )
        self.device_id = device_id

    # state of the simulated keypad
    @property
    def core(self) -> Any:
        return self._kp.core

    @property
    def storage(self) -> Any:
        return self._kp.storage

    @property
    def hw(self) -> Any:
        return self._kp.hw

    @property
    def raw(self) -> int:
        raw: int = self._kp.raw
        return raw

    @property
    def now_ms(self) -> int:
        now: int = self._kp.now_ms
        return now

    @property
    def powered(self) -> bool:
        return bool(self._kp.powered)

    @property
    def linked(self) -> bool:
        return bool(self._kp.linked)

    @property
    def key_edges(self) -> list[tuple[int, int, bool]]:
        edges: list[tuple[int, int, bool]] = self._kp.key_edges
        return edges

    @property
    def power_cuts(self) -> list[int]:
        cuts: list[int] = self._kp.power_cuts
        return cuts

    def ticks(self, now_ms: int) -> int:
        offset: int = self._kp.ticks_offset
        return (now_ms + offset) % PERIOD

    def next_deadline_ms(self) -> int | None:
        """Virtual time of the core's next deadline, or None."""
        d: int = self._kp.next_deadline_ms()
        return None if d == -1 else d

    def advance_to(self, now_ms: int, inclusive: bool = True) -> None:
        """Let time pass up to ``now_ms``, waking the core exactly at its deadlines (those at
        ``now_ms`` itself only if ``inclusive``)."""
        self._kp.advance_to(now_ms, inclusive)

    def set_keys(self, raw: int, now_ms: int) -> None:
        """Raw pin state (bit i = key i+1 pressed) from ``now_ms`` on. The edge is applied
        first, then whatever is due at ``now_ms`` runs in the same scan."""
        self._kp.set_keys(raw, now_ms)

    def connect(self, now_ms: int) -> None:
        self._kp.connect(now_ms)

    def disconnect(self, now_ms: int) -> None:
        self._kp.disconnect(now_ms)

    def write(self, data: bytes, now_ms: int) -> None:
        """Bytes from the host (dropped while the link is down or the power is off)."""
        self._kp.write(data, now_ms)

    def read_reports(self) -> list[bytes]:
        """Every 64-byte IN report the keypad has queued (none while unlinked)."""
        reports: list[bytes] = self._kp.read_reports()
        return reports

    def power_off(self) -> None:
        self._kp.power_off()

    def power_on(self, now_ms: int) -> None:
        self._kp.power_on(now_ms)

    def plan_power_cut(self) -> None:
        """The power fails halfway through the next journal write (back on power_on)."""
        self._kp.plan_power_cut()

    def key_for_score(self, score: int) -> int:
        key: int = self._kp.key_for_score(score)
        return key

    def journal_next_seq(self) -> int:
        seq: int = self._kp.journal_next_seq()
        return seq


class RealtimeKeypad:
    """A SimulatedKeypad on the wall clock, run by a daemon thread (thread-safe)."""

    def __init__(
        self,
        device_id: str = "K1",
        settings: Mapping[str, Any] | None = None,
        storage_dir: str | None = None,
    ) -> None:
        self._t0 = time.monotonic()
        self._cond = threading.Condition()
        self.keypad = SimulatedKeypad(
            device_id, settings=settings, now_ms=0, storage_dir=storage_dir
        )
        self._out = bytearray()
        self._script: list[tuple[int, int]] = []  # (time ms, raw pins), time order
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"sim-{device_id}", daemon=True)
        self._thread.start()

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _collect(self) -> None:
        for report in self.keypad.read_reports():
            self._out.extend(report)
        if self._out:
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                now = self.now_ms()
                while self._script and self._script[0][0] <= now:
                    at, raw = self._script.pop(0)
                    self.keypad.set_keys(raw, max(at, self.keypad.now_ms))
                self.keypad.advance_to(now)
                self._collect()
                waits = [1.0]
                d = self.keypad.next_deadline_ms()
                if d is not None:
                    waits.append((d - now) / 1000)
                if self._script:
                    waits.append((self._script[0][0] - now) / 1000)
                self._cond.wait(max(0.0005, min(waits)))

    # -- host side ------------------------------------------------------------------------------
    def connect(self) -> None:
        with self._cond:
            self.keypad.connect(self.now_ms())
            self._cond.notify_all()

    def disconnect(self) -> None:
        with self._cond:
            self.keypad.disconnect(self.now_ms())
            self._out.clear()

    def write(self, data: bytes) -> None:
        with self._cond:
            self.keypad.write(data, self.now_ms())
            self._collect()
            self._cond.notify_all()

    def read(self, timeout: float | None) -> bytes:
        """Stream bytes the keypad sent (b"" after ``timeout`` seconds with nothing)."""
        with self._cond:
            if not self._out:
                self._cond.wait_for(lambda: bool(self._out) or self._stop, timeout)
            data = bytes(self._out)
            self._out.clear()
            return data

    # -- the customer ---------------------------------------------------------------------------
    def press(self, key: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        """Press key number ``key`` (1-based) now, with optional contact bounce."""
        bit = 1 << (key - 1)
        with self._cond:
            t = max(self.now_ms(), self._script[-1][0] + 1 if self._script else 0)
            base = self._script[-1][1] if self._script else self.keypad.raw
            edges = [(t, base | bit)]
            for i in range(bounce_ms):  # chatter: toggles every ms, then settles
                edges.append((t + i + 1, base if i % 2 == 0 else base | bit))
            if bounce_ms % 2:
                edges.append((t + bounce_ms + 1, base | bit))
            edges.append((t + hold_ms, base))
            self._script.extend(edges)
            self._cond.notify_all()

    def power_cycle(self) -> None:
        with self._cond:
            self.keypad.power_off()
            self._out.clear()
            self.keypad.power_on(self.now_ms())
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=2)
