"""Import firmware modules on CPython (the firmware runs unchanged on both interpreters)."""

from __future__ import annotations

import types

from firmware_engines import cpython_namespace


def load(name: str) -> types.ModuleType:
    """firmware/rpfw/<name>.py as ``rpfw.<name>``, in the tests' firmware namespace."""
    return cpython_namespace().import_module(f"rpfw.{name}")
