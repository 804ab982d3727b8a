"""Where ratepad's shipped non-Python files are: the firmware sources, the Wireshark dissector and
the udev rule.

An installed wheel carries them inside the package (``ratepad/_data/``, put there by the build);
a source checkout (including an editable install) has them at the top of the checkout. The wheel's
copy wins, so an installed ratepad never picks up files of some unrelated checkout.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent.parent  # host/ratepad -> the checkout

FIRMWARE = "firmware"
DISSECTOR = "wireshark/ratepad.lua"
UDEV_RULE = "packaging/70-ratepad.rules"


def resource(name: str) -> Path:
    """The path of a shipped file or folder (``FIRMWARE``, ``DISSECTOR``, ``UDEV_RULE``).

    The path may not exist (a broken install); callers check and say what is missing.
    """
    packaged = _PACKAGE / "_data" / name
    if packaged.exists():
        return packaged
    return _CHECKOUT / name


def candidates(name: str) -> list[Path]:
    """Every place :func:`resource` looks, in order (for error messages)."""
    return [_PACKAGE / "_data" / name, _CHECKOUT / name]
