"""Transports addressed by URL, loaded lazily from a registry plus the entry-point group
``ratepad.transports`` (third parties register ``scheme = "package.module:Class"``).

Built in: ``hid://[serial]`` (hidapi), ``usb://[serial]`` (pyusb), ``sim://[id]`` (an
in-process simulated keypad), ``tcp://host:port/ID`` (a keypad served by ``ratepad sim
--serve``), ``replay://FILE`` (a recorded capture) and ``spy://URL`` (a hex-dump tap around any
other). Importing ratepad never imports hidapi or pyusb.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from ..errors import BadURLError, LocalProtocolError
from .base import DeviceInfo, Transport, to_reports

__all__ = [
    "DeviceInfo",
    "Transport",
    "check_url",
    "discover",
    "open_transport",
    "schemes",
    "to_reports",
]

ENTRY_POINT_GROUP = "ratepad.transports"

_BUILTIN = {
    "hid": "ratepad.transports.hid:HidTransport",
    "usb": "ratepad.transports.usb:UsbTransport",
    "sim": "ratepad.sim.transport:SimTransport",
    "tcp": "ratepad.transports.tcp:TcpTransport",
    "replay": "ratepad.capture.replay:ReplayTransport",
    "spy": "ratepad.transports.spy:SpyTransport",
}


def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def schemes() -> list[str]:
    return sorted(_registry())


def transport_class(scheme: str) -> type[Transport]:
    target = _registry().get(scheme)
    if target is None:
        raise BadURLError(f"unknown transport {scheme!r}:// (known: {', '.join(schemes())})")
    module_name, _, attr = target.partition(":")
    cls: type[Transport] = getattr(importlib.import_module(module_name), attr)
    return cls


def check_url(url: str) -> str:
    """``url`` if it can be parsed as a keypad URL at all (BadURLError otherwise): UTF-8 text
    (the shell passes any bytes; those that are not UTF-8 arrive as lone surrogates), no
    control characters, a scheme, a well-formed host part."""
    if not isinstance(url, str):
        raise BadURLError(f"{url!r} is not a keypad URL")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise BadURLError(f"{url!r} is not valid UTF-8") from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadURLError(f"{url!r}: control characters in a keypad URL")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "tcp://[::1/K1": Invalid IPv6 URL
        raise BadURLError(f"{url!r} is not a valid URL: {exc}") from None
    if not parts.scheme:
        raise BadURLError(f"{url!r} is not a keypad URL (e.g. hid://, sim://K1)")
    return url


def open_transport(url: str, backend: object = None) -> Transport:
    """The (not yet opened) transport for ``url``; BadURLError if it cannot be used.
    ``backend``: the library a ``hid://`` or ``usb://`` transport drives (a simulated bus,
    say), instead of the one its URL names or the default."""
    check_url(url)
    cls = transport_class(urlsplit(url).scheme)
    if backend is None:
        return cls(url)
    if not cls.takes_backend:
        raise LocalProtocolError(f"{url!r}: {cls.scheme}:// takes no backend")
    return cls(url, backend=backend)  # type: ignore[call-arg]


def discover(scheme_list: list[str] | None = None) -> list[DeviceInfo]:
    """Keypads visible through the given (default: all installed) transports."""
    out: list[DeviceInfo] = []
    for scheme in scheme_list or schemes():
        try:
            cls = transport_class(scheme)
        except ImportError:
            continue  # optional backend not installed (e.g. ratepad[hid])
        try:
            out.extend(cls.discover())
        except Exception:
            continue
    return out
