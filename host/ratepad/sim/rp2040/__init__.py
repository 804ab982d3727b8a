"""An emulated Raspberry Pi Pico running the real MicroPython rp2 image with the keypad firmware
as ``ratepad flash`` installs it: the ``rp2040`` engine of the simulator and the firmware's tests
on the real binary. See ``harness.py`` for where the image, the boot ROM and rp2040js are found.
"""

from __future__ import annotations

from .harness import (
    BOOTROM_ENV,
    IMAGE_ENV,
    Harness,
    HarnessError,
    HarnessUnavailable,
    find_bootrom,
    find_image,
    missing,
)

__all__ = [
    "BOOTROM_ENV",
    "IMAGE_ENV",
    "Harness",
    "HarnessError",
    "HarnessUnavailable",
    "find_bootrom",
    "find_image",
    "missing",
]
