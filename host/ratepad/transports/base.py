"""The one abstract transport every keypad link implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import SplitResult, urlsplit

from ..errors import BadURLError, LocalProtocolError

REPORT_SIZE = 64


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A keypad found by discovery: open it with ``ratepad.open(info.url)``."""

    url: str
    serial: str
    description: str


class Transport(ABC):
    """Moves stream bytes to and from one keypad; knows nothing of frames or messages.

    ``read`` returns whatever bytes arrived (for report-based links, whole reports including
    their zero padding, which the stream decoder skips) or ``b""`` after ``timeout`` seconds;
    it raises ``DisconnectedError`` when the keypad is gone.
    """

    scheme: ClassVar[str] = ""
    # True for transports whose constructor takes ``backend=`` (the library they drive)
    takes_backend: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.parts: SplitResult = urlsplit(url)
        except ValueError as exc:  # e.g. "tcp://[::1/K1": Invalid IPv6 URL
            raise BadURLError(f"{url!r} is not a valid URL: {exc}") from None
        if self.parts.scheme != self.scheme:
            raise LocalProtocolError(f"{url!r} is not a {self.scheme}:// URL")

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def read(self, timeout: float) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        """Keypads this transport can see now (none by default)."""
        return []

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_reports(data: bytes) -> list[bytes]:
    """Cut stream bytes into 64-byte HID reports, the last one zero-padded."""
    out = []
    for i in range(0, len(data), REPORT_SIZE):
        chunk = data[i : i + REPORT_SIZE]
        out.append(chunk + bytes(REPORT_SIZE - len(chunk)))
    return out
