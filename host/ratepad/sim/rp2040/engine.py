"""The ``rp2040`` engine of the simulator: each keypad of a scenario is an emulated Pico running the
real MicroPython image with the firmware as ``ratepad flash`` installs it (boot.py, main.py, the
device loop, TinyUSB, littlefs, the watchdog), driven on the scenario's virtual clock.

``Rp2040Keypad`` has the simulated keypad's interface (``ratepad.sim.simulated.SimulatedKeypad``) so
the timeline drives it like the others; what differs is physical:

* the keypad boots ``LEAD_MS`` before scenario time 0 (its ticks_ms at time 0 is the scenario's
  ``ticks_start_ms`` when that is at least ``LEAD_MS``); after a power cut or ``power_on`` it boots
  again, and presses during the boot (about half a second) are not seen, as on a real keypad;
* ``connect`` plugs the USB cable: a bus reset, enumeration by the emulated host, the HID
  interface opened (``link_ready``, counted in ``link_ups``: the runner opens its host session
  then, as a host opens a device once it appears). ``disconnect`` unplugs it: the
  host stops polling, and the firmware notices as it does on a board (an IN report unread);
* time moves in whole milliseconds: the keypad's next deadline is when its sleeping chip next
  wakes (its timer alarm, a USB transfer landing);
* ``plan_power_cut`` cuts the power in the middle of the next flash erase or program;
* the debounced key edges and the press counters live in the chip's RAM: not reported
  (``key_edges`` is empty); the journal's next sequence number is read from the flash, with the
  firmware's own journal code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import flashfs
from .harness import Harness
from .pico import MS, EmulatedPico

__all__ = ["LEAD_MS", "Rp2040Engine", "Rp2040Keypad"]

LEAD_MS = 1000  # the keypad powers up this long before scenario time 0
CUT_STEP = 8  # a planned power cut leaves the flash operation half done
REPORT = 64


class Rp2040Engine:
    """One emulator process hosting every keypad of a run."""

    def __init__(self) -> None:
        self.harness = Harness()

    def keypad(
        self,
        device_id: str,
        settings: Mapping[str, Any] | None = None,
        now_ms: int = 0,
        ticks_offset: int = 0,
    ) -> Rp2040Keypad:
        return Rp2040Keypad(self.harness, device_id, settings, now_ms, ticks_offset)

    def close(self) -> None:
        self.harness.close()


class Rp2040Keypad:
    """A scenario's keypad on an emulated Pico (scenario time in ms, see the module docstring)."""

    def __init__(
        self,
        harness: Harness,
        device_id: str,
        settings: Mapping[str, Any] | None,
        now_ms: int = 0,
        ticks_offset: int = 0,
    ) -> None:
        values = dict(settings or {})
        self.device_id = device_id
        nkeys = int(values.get("keys", 5))
        self._key_order = str(values.get("key_order", "12345"))
        image = flashfs.fs_image(device_id, values)
        self.pico = EmulatedPico(
            harness,
            image,
            nkeys=nkeys,
            attached=False,
            clock_start_ms=max(0, ticks_offset - LEAD_MS),
            name=device_id,
        )
        self.raw = 0
        self.linked = False
        self.now_ms = now_ms
        self._out = bytearray()  # host -> keypad bytes not yet made into a report
        self._reports: list[bytes] = []
        self._cuts: list[int] = []
        self._seen_events = 0
        self._run(now_ms)

    # -- time -----------------------------------------------------------------------------------
    def _ns(self, t_ms: int) -> int:
        return (t_ms + LEAD_MS) * MS

    def _run(self, t_ms: int, inclusive: bool = True) -> None:
        self._flush()
        target = self._ns(t_ms) - (0 if inclusive else 1)
        if target > self.pico.now:
            self.pico.run_to(target)
        if t_ms > self.now_ms:
            self.now_ms = t_ms
        self._reports.extend(self.pico.take_reports())
        for e in self.pico.events[self._seen_events :]:
            if e["what"] == "power_cut":
                self._cuts.append(max(0, math.ceil(e["t"] / MS) - LEAD_MS))
        self._seen_events = len(self.pico.events)

    def _poke(self) -> None:
        # an input changed: the chip wakes for it (its next wake-up is known after a run)
        self.pico.next_due = self.pico.now

    def _flush(self) -> None:
        # bytes the host wrote become 64-byte OUT reports (a report never arrives in pieces on
        # USB: pieces of one report written in one step travel together)
        while self._out:
            chunk = bytes(self._out[:REPORT])
            del self._out[:REPORT]
            self.pico.write_hid(chunk)
            self._poke()

    def next_deadline_ms(self) -> int | None:
        """Scenario time at which the sleeping chip wakes next (never now: it has run to now)."""
        if self._out:
            return self.now_ms
        due = self.pico.next_due
        if due is None or not self.pico.powered:
            return None
        return max(math.ceil(due / MS) - LEAD_MS, self.now_ms + 1)

    def advance_to(self, now_ms: int, inclusive: bool = True) -> None:
        self._run(now_ms, inclusive)

    # -- the customer, the cable, the power -----------------------------------------------------
    def set_keys(self, raw: int, now_ms: int) -> None:
        self._run(now_ms, inclusive=False)
        self.raw = raw
        self.pico.press_keys(raw)
        self._poke()
        self._run(now_ms)

    def connect(self, now_ms: int) -> None:
        self._run(now_ms)
        self.linked = True
        self.pico.attach(True)
        self._poke()

    def disconnect(self, now_ms: int) -> None:
        self._run(now_ms)
        self.linked = False
        self._out.clear()
        self._reports.clear()
        self.pico.attach(False)
        self._poke()

    def write(self, data: bytes, now_ms: int) -> None:
        self._run(now_ms)
        if self.powered and self.linked:
            self._out.extend(data)

    def read_reports(self) -> list[bytes]:
        out, self._reports = self._reports, []
        return out if self.powered and self.linked else []

    @property
    def powered(self) -> bool:
        return self.pico.powered

    @property
    def link_ready(self) -> bool:
        """The host has enumerated the keypad and opened its HID interface."""
        return self.linked and self.powered and self.pico.hid_ready

    @property
    def link_ups(self) -> int:
        """How many times the host opened the HID interface (each enumeration is a new device
        to the host: a re-plug, a reboot)."""
        return int(self.pico.state.get("linkUps", 0))

    def power_off(self) -> None:
        self._out.clear()
        self._reports.clear()
        self.pico.power(False)
        self.pico.state["powered"] = False

    def power_on(self, now_ms: int) -> None:
        self._run(now_ms)
        self.pico.power(True)
        self.pico.state["powered"] = True
        self._poke()

    def plan_power_cut(self) -> None:
        self.pico.cut_in_next_flash_op(CUT_STEP)

    @property
    def power_cuts(self) -> list[int]:
        return list(self._cuts)

    @property
    def key_edges(self) -> list[tuple[int, int, bool]]:
        return []

    def key_for_score(self, score: int) -> int:
        i = self._key_order.find(str(score))
        return i + 1 if i >= 0 else score

    def journal_next_seq(self) -> int:
        return flashfs.journal_next_seq(self.pico.fs_image())

    def close(self) -> None:
        self.pico.close()
