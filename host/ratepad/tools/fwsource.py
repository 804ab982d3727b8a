"""Load the keypad firmware (firmware/rpfw, MicroPython code) into this CPython process.

The simulator runs the real firmware core, unchanged, on CPython; a `micropython` stand-in and
the firmware's test fakes make that possible. The firmware folder is the one shipped with the
package (or the checkout's), unless ``$RATEPAD_FIRMWARE`` names another.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from .. import resources
from ..errors import ToolError

ENV = "RATEPAD_FIRMWARE"


class FirmwareNotFound(ToolError):
    """The firmware sources are not where ratepad looks for them."""


def firmware_dir() -> Path:
    """The folder holding boot.py, main.py and the rpfw package."""
    candidates = []
    if os.environ.get(ENV):
        candidates.append(Path(os.environ[ENV]))
    candidates += resources.candidates(resources.FIRMWARE)
    for c in candidates:
        if (c / "rpfw" / "core.py").is_file():
            return c
    raise FirmwareNotFound(
        f"firmware sources not found (looked in {', '.join(map(str, candidates))}); "
        f"set ${ENV} to the firmware folder"
    )


def load(module: str) -> ModuleType:
    """Import a firmware module (``rpfw.core``, ``fakes.keypad`` ...) on CPython."""
    root = firmware_dir()
    for p in (root / "fakes" / "cpython", root):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    return importlib.import_module(module)
