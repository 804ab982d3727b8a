"""``--capture FILE``: a transport wrapper that tees every byte of every link into one pcapng.

Each keypad is one interface of the capture (named after its URL's device id); bytes written to
the keypad are ``out``, bytes read from it ``in`` (see ``ratepad.capture``). Reader threads,
the writer thread (ACKs) and bridge threads all write through one lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..transports import Transport
from .pcapng import CaptureWriter, Direction

__all__ = ["CaptureTap", "CapturingTransport", "device_label"]


def device_label(url: str) -> str:
    """A short name for a keypad URL: the id of ``sim://K1?..`` or ``tcp://h:p/K1``, else the URL
    without its query."""
    scheme, _, rest = url.partition("://")
    rest = rest.split("?", 1)[0]
    if scheme == "sim":
        return rest.strip("/") or "K1"
    if scheme == "tcp" and "/" in rest:
        return rest.split("/", 1)[1].strip("/") or url
    return url.split("?", 1)[0]


class CaptureTap:
    """One capture file shared by every keypad link."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer = CaptureWriter(self.path, application="ratepad agent")
        self._lock = threading.Lock()
        self._closed = False

    def record(self, device: str, direction: Direction, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if not self._closed:
                self._writer.write(device, direction, data)

    def wrap(self, transport: Transport, device: str | None = None) -> CapturingTransport:
        return CapturingTransport(transport, self, device or device_label(transport.url))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()


class CapturingTransport(Transport):
    """Any transport, with its traffic recorded into a CaptureTap."""

    def __init__(self, inner: Transport, tap: CaptureTap, device: str) -> None:
        # no Transport.__init__: the URL is the inner transport's, whatever its scheme
        self.inner = inner
        self.url = inner.url
        self.parts = inner.parts
        self.tap = tap
        self.device = device

    def open(self) -> None:
        self.inner.open()

    def write(self, data: bytes) -> None:
        self.tap.record(self.device, "out", data)
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        self.tap.record(self.device, "in", data)
        return data

    def close(self) -> None:
        self.inner.close()
