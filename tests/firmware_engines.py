"""Run the firmware test modules (tests/fw/fwtest_*.py) on CPython and on real MicroPython.

The modules are written for MicroPython (plain asserts, no pytest) and import the firmware as
``rpfw.*``, its harness as ``sim.*`` and the fake board as ``machine``; every ``test_*``
function runs on both engines. On CPython they load in a firmware namespace of their own
(``ratepad._fwtest.*``), never through ``sys.path``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ratepad.tools.fwsource import FirmwareNamespace

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
FW_TESTS = Path(__file__).resolve().parent / "fw"

_namespace: FirmwareNamespace | None = None


def fw_test_functions() -> list[tuple[str, str]]:
    """(module, function) of every firmware test, found without importing anything."""
    out = []
    for path in sorted(FW_TESTS.glob("fwtest_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.append((path.stem, node.name))
    return out


def cpython_namespace() -> FirmwareNamespace:
    """The firmware, its harness and the fw tests, loaded on CPython (with the stand-ins)."""
    global _namespace
    if _namespace is None:
        _namespace = FirmwareNamespace([FIRMWARE, FW_TESTS], prefix="ratepad._fwtest")
    return _namespace


def run_on_cpython(module: str, function: str) -> None:
    getattr(cpython_namespace().import_module(module), function)()


# On MicroPython `machine` is the fake board (the VM's own has no pins or USB device).
VM_SETUP = "import sys\nfrom sim.mp import machine\nsys.modules['machine'] = machine\n"


def load_into_vm(vm: object) -> None:
    """Copy the firmware, its harness and the fw tests into a MicroPython VM's /lib."""
    add_dir = vm.add_dir  # type: ignore[attr-defined]
    add_dir(FIRMWARE / "rpfw", "/lib/rpfw")
    add_dir(FIRMWARE / "sim", "/lib/sim", "**/*.py")
    add_dir(FW_TESTS, "/lib")
    vm.exec(VM_SETUP)  # type: ignore[attr-defined]
