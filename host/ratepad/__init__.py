"""ratepad: the host side of the ratepad customer-satisfaction rating keypads.

``import ratepad`` needs neither hidapi nor pyusb; transports load them when used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    DeviceBusyError,
    DeviceNotFoundError,
    DevicePermissionError,
    DisconnectedError,
    FrameError,
    IncompatiblePeerError,
    LocalProtocolError,
    ProtocolError,
    RatepadError,
    RatepadTimeout,
    RemoteProtocolError,
    TransportError,
)

try:
    __version__ = version("ratepad")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "DeviceBusyError",
    "DeviceNotFoundError",
    "DevicePermissionError",
    "DisconnectedError",
    "FrameError",
    "IncompatiblePeerError",
    "LocalProtocolError",
    "ProtocolError",
    "RatepadError",
    "RatepadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "__version__",
]
