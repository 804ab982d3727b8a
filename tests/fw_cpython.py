"""Import firmware modules on CPython (the firmware runs unchanged on both interpreters)."""

from __future__ import annotations

import importlib
import types

from firmware_engines import cpython_paths


def load(name: str) -> types.ModuleType:
    """Import firmware/rpfw/<name>.py as ``rpfw.<name>``."""
    cpython_paths()
    return importlib.import_module(f"rpfw.{name}")
