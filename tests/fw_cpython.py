"""Load firmware modules on CPython (the firmware core runs unchanged on both interpreters)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


def _micropython_shim() -> types.ModuleType:
    mod = types.ModuleType("micropython")
    mod.const = lambda value: value  # type: ignore[attr-defined]
    return mod


def load(name: str) -> types.ModuleType:
    """Import firmware/<name>.py as a fresh module under a private name."""
    sys.modules.setdefault("micropython", _micropython_shim())
    spec = importlib.util.spec_from_file_location(f"_fw_{name}", FIRMWARE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
