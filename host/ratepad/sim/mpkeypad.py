"""The simulated keypad on the real MicroPython VM: the MicroPython engine of the simulator.

Runs ``firmware/sim/simkeypad.py`` (the very file the CPython engine runs) inside the
MicroPython WebAssembly VM; this class is its host-side proxy with SimulatedKeypad's interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..tools import fwsource as _firmware
from ..tools.mpvm import PACKAGE, MicroPythonVM, MicroPythonVMUnavailable, find_node_modules

PERIOD = 1 << 30
INSTALL = (
    f"install Node.js (18 or later) and the npm package {PACKAGE} "
    f"(`npm install {PACKAGE}` in this folder or a parent, or set $RATEPAD_NODE_MODULES)"
)


def vm_missing() -> str | None:
    """Why the MicroPython engine cannot run here, with how to fix it (None: it can)."""
    import shutil

    if shutil.which("node") is None:
        return f"the MicroPython engine needs Node.js (`node` is not on PATH): {INSTALL}"
    try:
        find_node_modules()
    except MicroPythonVMUnavailable:
        return f"the MicroPython engine needs the npm package {PACKAGE}: {INSTALL}"
    return None


class MicroPythonEngine:
    """One MicroPython VM hosting every simulated keypad of a run."""

    def __init__(self) -> None:
        self.vm = MicroPythonVM(timeout=600)
        root = _firmware.firmware_dir()
        self.vm.add_dir(root / "rpfw", "/lib/rpfw")
        self.vm.add_dir(root / "sim", "/lib/sim", "**/*.py")
        self.vm.exec("from sim.simkeypad import SimKeypad\nfrom binascii import hexlify\nK = {}")

    def keypad(
        self,
        device_id: str,
        settings: Mapping[str, Any] | None = None,
        now_ms: int = 0,
        ticks_offset: int = 0,
    ) -> MicroPythonKeypad:
        return MicroPythonKeypad(self, device_id, settings, now_ms, ticks_offset)

    def close(self) -> None:
        self.vm.close()


class MicroPythonKeypad:
    """Host-side proxy of a SimKeypad living in the MicroPython VM."""

    def __init__(
        self,
        engine: MicroPythonEngine,
        device_id: str,
        settings: Mapping[str, Any] | None,
        now_ms: int,
        ticks_offset: int,
    ) -> None:
        self.vm = engine.vm
        self.device_id = device_id
        values = {"serial": device_id, **dict(settings or {})}
        text = "".join(f"{k}={v}\n" for k, v in values.items()).encode()
        self._ref = f"K[{device_id!r}]"
        self.vm.exec(f"{self._ref} = SimKeypad({device_id!r}, {text!r}, {now_ms}, {ticks_offset})")
        self.raw = 0
        self.ticks_offset = ticks_offset

    def _call(self, call: str) -> Any:
        return self.vm.eval(f"{self._ref}.{call}")

    @property
    def powered(self) -> bool:
        return bool(self._call("powered"))

    @property
    def key_edges(self) -> list[tuple[int, int, bool]]:
        return [(int(t), int(k), bool(d)) for t, k, d in self._call("key_edges")]

    @property
    def power_cuts(self) -> list[int]:
        return [int(t) for t in self._call("power_cuts")]

    def next_deadline_ms(self) -> int | None:
        d = int(self._call("next_deadline_ms()"))
        return None if d == -1 else d

    def advance_to(self, now_ms: int, inclusive: bool = True) -> None:
        self.vm.exec(f"{self._ref}.advance_to({now_ms}, {inclusive})")

    def set_keys(self, raw: int, now_ms: int) -> None:
        self.raw = raw
        self.vm.exec(f"{self._ref}.set_keys({raw}, {now_ms})")

    def connect(self, now_ms: int) -> None:
        self.vm.exec(f"{self._ref}.connect({now_ms})")

    def disconnect(self, now_ms: int) -> None:
        self.vm.exec(f"{self._ref}.disconnect({now_ms})")

    def write(self, data: bytes, now_ms: int) -> None:
        self.vm.exec(f"{self._ref}.write({bytes(data)!r}, {now_ms})")

    def read_reports(self) -> list[bytes]:
        hexes = self.vm.eval(f"[str(hexlify(r), 'ascii') for r in {self._ref}.read_reports()]")
        return [bytes.fromhex(h) for h in hexes]

    def power_off(self) -> None:
        self.vm.exec(f"{self._ref}.power_off()")

    def power_on(self, now_ms: int) -> None:
        self.vm.exec(f"{self._ref}.power_on({now_ms})")

    def plan_power_cut(self) -> None:
        self.vm.exec(f"{self._ref}.plan_power_cut()")

    def key_for_score(self, score: int) -> int:
        return int(self._call(f"key_for_score({score})"))

    def journal_next_seq(self) -> int:
        return int(self._call("journal_next_seq()"))
