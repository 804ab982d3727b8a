"""Run the firmware test modules (tests/fw/fwtest_*.py) on CPython and on real MicroPython.

The modules are written for MicroPython (plain asserts, no pytest) and import the firmware as
``rpfw.*`` and the test fakes as ``fakes.*``; every ``test_*`` function runs on both engines.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
FW_TESTS = Path(__file__).resolve().parent / "fw"


def fw_test_functions() -> list[tuple[str, str]]:
    """(module, function) of every firmware test, found without importing anything."""
    out = []
    for path in sorted(FW_TESTS.glob("fwtest_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.append((path.stem, node.name))
    return out


def cpython_paths() -> None:
    """Make rpfw, fakes and the fw tests importable on CPython (with the micropython shim)."""
    for p in (FIRMWARE / "fakes" / "cpython", FIRMWARE, FW_TESTS):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


def run_on_cpython(module: str, function: str) -> None:
    cpython_paths()
    getattr(importlib.import_module(module), function)()


def load_into_vm(vm: object) -> None:
    """Copy the firmware, the fakes and the fw tests into a MicroPython VM's /lib."""
    add_dir = vm.add_dir  # type: ignore[attr-defined]
    add_dir(FIRMWARE / "rpfw", "/lib/rpfw")
    add_dir(FIRMWARE / "fakes", "/lib/fakes")
    add_dir(FW_TESTS, "/lib")
