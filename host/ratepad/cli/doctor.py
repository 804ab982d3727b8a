"""`ratepad doctor`: what this PC needs to talk to keypads, and how to fix what is missing."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add ``doctor``."""
    from ..tools.doctor import cmd_doctor

    p = sub.add_parser(
        "doctor",
        help="check drivers, permissions and versions; say how to fix",
        description="Check what this PC needs to talk to keypads (backends, "
        "libusb, udev rule, device permissions, versions). Exit 1 if a check "
        "fails; warnings do not fail.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.add_argument(
        "--udev-rule",
        action="store_true",
        help="print the udev rule that lets users open keypads (Linux) and exit",
    )
    p.set_defaults(func=cmd_doctor)
