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

from .. import _firmware

PERIOD = 1 << 30  # MicroPython's ticks_ms wraps here


class SimulatedKeypad:
    """One keypad on a virtual clock (milliseconds, any integer; the firmware sees ticks_ms)."""

    def __init__(
        self,
        device_id: str = "K1",
        *,
        settings: Mapping[str, Any] | None = None,
        now_ms: int = 0,
        ticks_offset: int = 0,
        storage_dir: str | None = None,
    ) -> None:
        fake = _firmware.load("fakes.keypad")
        self._core_cls = _firmware.load("rpfw.core").Core
        self.device_id = device_id
        values = {"serial": device_id, **dict(settings or {})}
        text = "".join(f"{k}={v}\n" for k, v in values.items()).encode()
        self.storage: Any
        if storage_dir is None:  # flash in memory, with power cuts on demand
            self.storage = _firmware.load("fakes.memstorage").MemStorage()
            self.storage.files["settings"] = bytearray(text)
        else:  # flash in a folder: the journal outlives this process
            self.storage = _firmware.load("rpfw.storage").FileStorage(storage_dir)
            if self.storage.read("settings") is None:
                self.storage.replace("settings", text)
        self.hw: Any = fake.FakeHw()
        self.ticks_offset = ticks_offset  # lets tests start ticks_ms near its wraparound
        self.now_ms = now_ms
        self.raw = 0
        self.powered = False
        self.linked = False
        self.core: Any = None
        self._report = bytearray(64)
        self._power_cut: type[BaseException] = _firmware.load("fakes.memstorage").PowerCut
        self.key_edges: list[tuple[int, int, bool]] = []  # (time, key number, down)
        self.power_cuts: list[int] = []  # times the power failed mid-write
        self.power_on(now_ms)

    # -- clock --------------------------------------------------------------------------------
    def ticks(self, now_ms: int) -> int:
        return (now_ms + self.ticks_offset) % PERIOD

    def next_deadline_ms(self) -> int | None:
        """Virtual time of the core's next deadline, or None."""
        if not self.powered:
            return None
        d: int = self.core.next_deadline(self.ticks(self.now_ms))
        if d == -1:
            return None
        delta = (d - self.ticks(self.now_ms) + PERIOD // 2) % PERIOD - PERIOD // 2
        return self.now_ms + max(delta, 0)

    def advance_to(self, now_ms: int, inclusive: bool = True) -> None:
        """Let time pass up to ``now_ms``, waking the core exactly at its deadlines (those at
        ``now_ms`` itself only if ``inclusive``)."""
        while self.powered:
            d = self.next_deadline_ms()
            if d is None or d > now_ms or (d == now_ms and not inclusive):
                break
            self.now_ms = d
            self._step(d)
        self.now_ms = max(self.now_ms, now_ms)

    def _step(self, now_ms: int) -> None:
        before = self.core.debouncer.state
        self._guarded(self.core.step, self.raw, self.ticks(now_ms))
        if self.powered:
            changed = self.core.debouncer.state ^ before
            for k in range(5):
                if changed >> k & 1:
                    self.key_edges.append((now_ms, k + 1, bool(self.core.debouncer.state >> k & 1)))

    def _guarded(self, fn: Any, *args: Any) -> None:
        # The firmware raises the fake flash's PowerCut when a planned cut happens: the keypad
        # is dead from that moment until power_on().
        try:
            fn(*args)
        except self._power_cut:
            self.power_off()
            self.power_cuts.append(self.now_ms)

    # -- pins -------------------------------------------------------------------------------------
    def set_keys(self, raw: int, now_ms: int) -> None:
        """Raw pin state (bit i = key i+1 pressed) from ``now_ms`` on. The edge is applied
        first, then whatever is due at ``now_ms`` runs in the same scan."""
        self.advance_to(now_ms, inclusive=False)
        self.raw = raw
        self.now_ms = max(self.now_ms, now_ms)
        if self.powered:
            self._step(now_ms)

    # -- link -------------------------------------------------------------------------------------
    def connect(self, now_ms: int) -> None:
        self.advance_to(now_ms)
        self.linked = True
        if self.powered:
            self.core.connect(self.ticks(now_ms))

    def disconnect(self, now_ms: int) -> None:
        self.advance_to(now_ms)
        self.linked = False
        if self.powered:
            self.core.disconnect(self.ticks(now_ms))

    def write(self, data: bytes, now_ms: int) -> None:
        """Bytes from the host (dropped while the link is down or the power is off)."""
        self.advance_to(now_ms)
        if self.powered and self.linked:
            self._guarded(self.core.receive, data, self.ticks(now_ms))

    def read_reports(self) -> list[bytes]:
        """Every 64-byte IN report the keypad has queued (none while unlinked)."""
        out: list[bytes] = []
        if not (self.powered and self.linked):
            return out
        while self.core.pull(self._report):
            out.append(bytes(self._report))
        return out

    # -- power ------------------------------------------------------------------------------------
    def power_off(self) -> None:
        self.powered = False
        self.core = None

    def power_on(self, now_ms: int) -> None:
        self.now_ms = max(self.now_ms, now_ms)
        if hasattr(self.storage, "budget"):
            self.storage.budget = -1  # power is back: writes complete again
        self.core = self._core_cls(self.hw, self.storage, board="sim")
        self.core.boot(self.raw, self.ticks(self.now_ms))
        self.powered = True
        if self.linked:
            self.core.connect(self.ticks(self.now_ms))


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
