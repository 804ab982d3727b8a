"""One emulated Pico as a test or a tool sees it: the USB cable, the CDC console, the HID
interface, the key pins, the LEDs and buzzer, the power, and its flash.

Time is simulated and only moves when asked (``run_for``, ``run_until``); everything the host
received meanwhile is collected here::

    with Harness() as h:
        pico = EmulatedPico(h, fs=flashfs.fs_image("K1"))
        pico.run_until(lambda: pico.hid_ready, timeout_ms=3000)
        pico.press_keys(0b1)             # key 1 down (GPIO low)
        pico.run_for(100)
        reports = pico.take_reports()
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ...tools import fwsource
from .harness import Harness, HarnessError, b64

__all__ = ["MS", "EmulatedPico", "board_pins", "replay_flash_ops"]

MS = 1_000_000  # keypad time is in nanoseconds
_NAMES = itertools.count(1)


def board_pins(nkeys: int = 5, board: str = "pico") -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(key GPIOs, LED GPIOs, buzzer GPIO or -1) from the firmware's own board definition."""
    b = fwsource.load("rpfw.board")
    keys, leds, _status, buzzer = b.pins(board, nkeys)
    return tuple(keys), tuple(leds), int(buzzer)


STATUS_LED = 25  # Pin("LED") on the Pico


class EmulatedPico:
    """A keypad in ``harness``: boots at once from ``fs`` (a littlefs image, see ``flashfs``;
    None: a fresh MicroPython that formats its own filesystem)."""

    def __init__(
        self,
        harness: Harness,
        fs: bytes | None = None,
        *,
        nkeys: int = 5,
        attached: bool = True,
        clock_start_ms: int = 0,
        name: str | None = None,
    ) -> None:
        self.h = harness
        self.name = name or f"pico{next(_NAMES)}"
        self.key_gpios, self.led_gpios, self.buzzer_gpio = board_pins(nkeys)
        self.keys = 0  # pressed keys, bit i = key i + 1
        self.now = 0  # keypad time, ns
        self.reports: list[bytes] = []
        self.console = bytearray()
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.next_due: int | None = None
        fields: dict[str, Any] = {"attached": attached, "clock_start": clock_start_ms * MS}
        if fs is not None:
            fields["fs"] = b64(fs)
        self.h.request("open", kp=self.name, levels=self._levels(), **fields)

    # -- time -----------------------------------------------------------------------------------
    def run_to(self, t_ns: int) -> None:
        """Run the keypad to keypad time ``t_ns`` (ns) and collect what the host got."""
        r = self.h.request(
            "run",
            kp=self.name,
            until=t_ns,
            gpios=[*self.led_gpios, STATUS_LED],
            buzzer=self.buzzer_gpio,
        )
        self.now = int(r["t"])
        self.reports.extend(bytes.fromhex(x) for x in r["reports"])
        self.console.extend(base64.b64decode(r["cdc"]))
        self.events.extend(r["events"])
        self.state = r["state"]
        self.next_due = r["next"]

    def run_for(self, ms: float) -> None:
        self.run_to(self.now + int(ms * MS))

    def run_until(self, done: Callable[[], bool], timeout_ms: int = 5000, step_ms: int = 5) -> None:
        """Run in ``step_ms`` steps until ``done()``; HarnessError after ``timeout_ms``."""
        end = self.now + timeout_ms * MS
        while not done():
            if self.now >= end:
                raise HarnessError(f"{self.name}: not done after {timeout_ms} simulated ms")
            self.run_to(min(end, self.now + step_ms * MS))

    # -- what the host and the customer do ------------------------------------------------------
    def _levels(self) -> dict[int, int]:
        # keys are buttons to GND with the pin's pull-up: pressed reads 0
        return {g: 0 if (self.keys >> i) & 1 else 1 for i, g in enumerate(self.key_gpios)}

    def press_keys(self, keys: int) -> None:
        """The pressed keys from now on (bit i = key i + 1)."""
        self.keys = keys
        self.h.request("levels", kp=self.name, levels=self._levels())

    def attach(self, on: bool = True) -> None:
        self.h.request("attach", kp=self.name, on=on)

    def power(self, on: bool) -> None:
        self.h.request("power", kp=self.name, on=on)

    def cut_at(self, instruction: int) -> None:
        """The power fails at that instruction of the running chip (counted from power-on)."""
        self.h.request("cut", kp=self.name, at=instruction)

    def cut_in_next_flash_op(self, step: int = 8) -> None:
        """The power fails in the next flash erase or program, ``step`` of its 16 parts done."""
        self.h.request("cut", kp=self.name, next_op=step)

    def hang(self) -> None:
        """The firmware stops running (stuck with interrupts off); time and the watchdog go on."""
        self.h.request("hang", kp=self.name)

    def record_flash_ops(self) -> None:
        self.h.request("oplog", kp=self.name, on=True)

    def flash_ops(self) -> list[dict[str, Any]]:
        """The erases and programs since record_flash_ops() (and stop recording)."""
        ops: list[dict[str, Any]] = self.h.request("oplog", kp=self.name, on=False)["ops"]
        return ops

    def write_hid(self, report: bytes) -> None:
        self.h.request("hid", kp=self.name, hex=report.hex())

    def write_console(self, data: bytes) -> None:
        self.h.request("cdc", kp=self.name, data=b64(data))

    def take_reports(self) -> list[bytes]:
        out, self.reports = self.reports, []
        return out

    def take_console(self) -> bytes:
        out = bytes(self.console)
        self.console.clear()
        return out

    def fs_image(self) -> bytes:
        return base64.b64decode(self.h.request("flash", kp=self.name)["fs"])

    def close(self) -> None:
        self.h.request("close", kp=self.name)

    # -- read back ------------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return bool(self.state.get("powered", True))

    @property
    def hid_ready(self) -> bool:
        return bool(self.state.get("hidReady"))

    @property
    def console_ready(self) -> bool:
        return bool(self.state.get("cdcReady"))

    def leds(self) -> int:
        """LEDs lit (bit i = LED i + 1)."""
        out = self.state.get("outputs", {})
        return sum(1 << i for i, g in enumerate(self.led_gpios) if out.get(str(g)) == 1)

    def status_led(self) -> bool:
        return bool(self.state.get("outputs", {}).get(str(STATUS_LED)) == 1)

    def buzzer(self) -> tuple[int, int] | None:
        """(frequency Hz, duty 0..65535) while the buzzer sounds."""
        b = self.state.get("buzzer")
        return (int(b[0]), int(b[1])) if b else None

    def descriptors(self) -> dict[str, bytes | None]:
        s = self.state
        return {
            k: bytes.fromhex(s[k]) if s.get(k) else None
            for k in ("deviceDescriptor", "configDescriptor", "reportDescriptor")
        }

    def boots(self) -> Iterable[dict[str, Any]]:
        return [e for e in self.events if e["what"] == "boot"]


def replay_flash_ops(
    harness: Harness, fs: bytes, ops: list[dict[str, Any]], done: int, step: int | None = None
) -> bytes:
    """The littlefs image ``fs`` after the first ``done`` of ``ops`` (``flash_ops()``) and, with
    ``step``, the next one torn there by a power cut (the emulator's own rule for a torn
    erase or program)."""
    r = harness.request("replay", fs=b64(fs), ops=ops, done=done, step=step)
    return base64.b64decode(r["fs"])
