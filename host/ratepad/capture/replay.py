"""``replay://FILE[?device=ID&speed=X&loop=N&skip=S&gap=G]``: a recorded capture played back as
a keypad.

The keypad-to-host bytes of the capture (one device: the first, or ``device``; ``BUS.ADDR`` in a
USB capture) come back from ``read`` with their recorded timing scaled by ``speed`` (1 = real
time, 0 = as fast as possible); what the host writes is accepted and ignored. Options in the
spirit of python-can's player: ``loop`` plays the capture N times (0 = until closed), ``skip``
shortens every pause longer than S seconds to S, ``gap`` puts at least G seconds between chunks.

At the end of the capture ``read`` raises ``EndOfCapture``: not a lost link to reconnect to, so
``ratepad.open("replay://...")`` ends with one ``Lost`` event that says so.

Timed replay sleeps until ``SPIN_S`` before a chunk is due and yields the processor for the rest,
so chunks are handed out within a fraction of a millisecond of their time (``lateness``).
"""

from __future__ import annotations

import math
import time
from urllib.parse import parse_qsl, unquote

from ..errors import DeviceNotFoundError, DisconnectedError, EndOfCapture, LocalProtocolError
from ..transports.base import Transport
from .pcapng import CaptureError, Chunk, scan_capture

SPIN_S = 0.001  # the last stretch before a chunk is due: yield in a loop instead of sleeping
OPTIONS = {"device", "speed", "loop", "skip", "gap"}


class ReplayTransport(Transport):
    scheme = "replay"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = unquote(self.parts.netloc + self.parts.path)
        query = dict(parse_qsl(self.parts.query))
        unknown = sorted(set(query) - OPTIONS)
        if unknown:
            raise LocalProtocolError(f"{url!r}: unknown option {unknown[0]!r}")
        self.device = query.get("device")
        self.speed = self._number(query, "speed", 1.0)
        self.skip = self._number(query, "skip", math.inf)
        self.gap = self._number(query, "gap", 0.0)
        loop = self._number(query, "loop", 1.0)
        if loop != int(loop):
            raise LocalProtocolError(f"{url!r}: loop must be a whole number")
        self.loop = int(loop)
        self._chunks: list[Chunk] = []
        self._due: list[float] = []  # seconds after the start of a pass
        self._pass_s = 0.0
        self._next = 0
        self._passes = 0
        self._start = 0.0
        self._open = False
        self.lateness: list[float] = []  # seconds each chunk was handed out after its time
        self.timestamp_us = 0  # capture time of the last chunk handed out
        self.cut: str | None = None  # where the capture was cut short, if it was

    def _number(self, query: dict[str, str], name: str, default: float) -> float:
        text = query.get(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise LocalProtocolError(f"{self.url!r}: {name} must be a number") from None
        if math.isnan(value) or value < 0 or (math.isinf(value) and name != "skip"):
            raise LocalProtocolError(f"{self.url!r}: {name} must be a finite number >= 0")
        return value

    def open(self) -> None:
        try:
            scan = scan_capture(self.path, usb_device=self.device if self._is_usb() else None)
        except CaptureError as exc:
            raise DeviceNotFoundError(str(exc)) from None
        chunks = scan.chunks
        self.cut = scan.cut
        device = self.device or next((c.device for c in chunks if c.direction == "in"), None)
        self._chunks = [c for c in chunks if c.direction == "in" and c.device == device]
        self.device = device  # the one replayed (the first keypad when none was asked for)
        if not self._chunks:
            raise DeviceNotFoundError(f"{self.path}: no keypad traffic to replay")
        self._due = []
        at = 0.0
        for i, c in enumerate(self._chunks):
            if i:
                pause = (c.timestamp_us - self._chunks[i - 1].timestamp_us) / 1e6
                pause = pause / self.speed if self.speed > 0 else 0.0
                at += max(self.gap, min(max(pause, 0.0), self.skip))
            self._due.append(at)
        self._pass_s = at + self.gap
        self._next = 0
        self._passes = 0
        self._open = True
        self._start = time.monotonic()

    def _is_usb(self) -> bool:
        return self.device is not None and self.device.replace(".", "").isdigit()

    def write(self, data: bytes) -> None:
        if not self._open:
            raise DisconnectedError(f"{self.url} is not open")

    def read(self, timeout: float) -> bytes:
        if not self._open:
            raise DisconnectedError(f"{self.url} is not open")
        if self._next >= len(self._chunks):
            self._passes += 1
            if self.loop and self._passes >= self.loop:
                raise EndOfCapture(f"{self.url}: end of capture")
            self._next = 0
            self._start += self._pass_s
        chunk = self._chunks[self._next]
        timed = self.speed > 0 or self.gap > 0
        if timed:
            due = self._start + self._due[self._next]
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return b""
            if wait > SPIN_S:
                time.sleep(wait - SPIN_S)  # sleeps overshoot by ~0.1 ms, more on a busy machine
            while (now := time.monotonic()) < due:
                time.sleep(0)
            self.lateness.append(now - due)
        self._next += 1
        self.timestamp_us = chunk.timestamp_us
        return chunk.data

    @property
    def passes(self) -> int:
        """Passes through the capture completed so far."""
        return self._passes

    def close(self) -> None:
        self._open = False
