"""``spy://INNER-URL``: a hex-dump tap around any other transport (written to stderr)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .base import Transport


class SpyTransport(Transport):
    scheme = "spy"

    def __init__(self, url: str, out: TextIO | None = None) -> None:
        super().__init__(url)
        from . import open_transport

        self.inner = open_transport(url[len("spy://") :])
        self.out = out or sys.stderr
        self._t0 = time.monotonic()

    def _dump(self, direction: str, data: bytes) -> None:
        stamp = time.monotonic() - self._t0
        for i in range(0, len(data), 32):
            self.out.write(f"{stamp:10.4f} {direction} {data[i : i + 32].hex(' ')}\n")
        self.out.flush()

    def open(self) -> None:
        self.inner.open()

    def write(self, data: bytes) -> None:
        self._dump("->", data)
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if data:
            self._dump("<-", data)
        return data

    def close(self) -> None:
        self.inner.close()
