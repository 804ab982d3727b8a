"""ratepad: the host side of the ratepad customer-satisfaction rating keypads.

``import ratepad`` needs neither hidapi nor pyusb; transports load them when used.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    CommandError,
    DeviceBusyError,
    DeviceNotFoundError,
    DevicePermissionError,
    DeviceUnavailableError,
    DisconnectedError,
    EncodeError,
    FrameError,
    IncompatiblePeerError,
    LocalProtocolError,
    PromptEndedError,
    ProtocolError,
    RatepadError,
    RatepadTimeout,
    RemoteProtocolError,
    ToolError,
    TransportError,
    UnknownDeviceError,
)
from .events import (
    CommandResult,
    Connected,
    Event,
    KeyEvent,
    LogLine,
    Lost,
    Rating,
    Status,
    UnknownMessage,
)
from .keypad import Keypad, PromptHandle, ReconnectPolicy
from .transports import DeviceInfo, open_transport


def open(url: str, *, backend: object = None, **options: Any) -> Keypad:
    """Connect to the keypad at ``url`` (``hid://``, ``usb://``, ``sim://K1``, ``tcp://...``);
    ``backend``: the library ``hid://`` or ``usb://`` drives (e.g. a simulated bus's)."""
    return Keypad(open_transport(url, backend), **options)


def find(schemes: list[str] | None = None) -> list[DeviceInfo]:
    """Keypads that can be opened now, through every installed transport."""
    from .transports import discover

    return discover(schemes)


__version__ = "0.1.0"
"""This ratepad's version (host toolkit and server), written only here: pyproject.toml reads it
(``[tool.setuptools.dynamic]``), ``ratepad --version`` and the server say it. The firmware carries
its own (``firmware/rpfw/core.py``); docs/compatibility.md says which go together."""

__all__ = [
    "CommandError",
    "CommandResult",
    "Connected",
    "DeviceBusyError",
    "DeviceInfo",
    "DeviceNotFoundError",
    "DevicePermissionError",
    "DeviceUnavailableError",
    "DisconnectedError",
    "EncodeError",
    "Event",
    "FrameError",
    "IncompatiblePeerError",
    "KeyEvent",
    "Keypad",
    "LocalProtocolError",
    "LogLine",
    "Lost",
    "PromptEndedError",
    "PromptHandle",
    "ProtocolError",
    "RatepadError",
    "RatepadTimeout",
    "Rating",
    "ReconnectPolicy",
    "RemoteProtocolError",
    "Status",
    "ToolError",
    "TransportError",
    "UnknownDeviceError",
    "UnknownMessage",
    "__version__",
    "find",
    "open",
]


def __getattr__(name: str) -> Any:
    # `ratepad.sim` (simulated keypads) without importing the firmware at `import ratepad`
    # and `ratepad.aio` (the asyncio facade), both importable after a plain `import ratepad`
    if name in ("sim", "aio"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ratepad' has no attribute {name!r}")
