"""``replay://FILE[?device=ID&speed=X]``: a recorded capture played back as a keypad.

The keypad-to-host bytes of the capture (one device: the first, or ``device``) come back from
``read`` with their recorded timing scaled by ``speed`` (1 = real time, 0 = as fast as
possible); what the host writes is accepted and ignored.

Timed replay sleeps until ``SPIN_S`` before a chunk is due and yields the processor for the rest,
so chunks are handed out within a fraction of a millisecond of their time (``lateness``).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, unquote

from ..capture.pcapng import CaptureError, Chunk, read_capture
from ..errors import DeviceNotFoundError, DisconnectedError, LocalProtocolError
from .base import Transport

SPIN_S = 0.001  # the last stretch before a chunk is due: yield in a loop instead of sleeping


class ReplayTransport(Transport):
    scheme = "replay"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = unquote(self.parts.netloc + self.parts.path)
        query = dict(parse_qsl(self.parts.query))
        self.device = query.get("device")
        try:
            self.speed = float(query.get("speed", "1"))
        except ValueError:
            raise LocalProtocolError(f"{url!r}: speed must be a number") from None
        if self.speed < 0:
            raise LocalProtocolError(f"{url!r}: speed must be >= 0")
        self._chunks: list[Chunk] = []
        self._next = 0
        self._start = 0.0
        self.lateness: list[float] = []  # seconds each chunk was handed out after its time
        self.timestamp_us = 0  # capture time of the last chunk handed out

    def open(self) -> None:
        try:
            chunks = read_capture(self.path)
        except CaptureError as exc:
            raise DeviceNotFoundError(str(exc)) from None
        device = self.device or next((c.device for c in chunks if c.direction == "in"), None)
        self._chunks = [c for c in chunks if c.direction == "in" and c.device == device]
        self.device = device  # the one replayed (the first keypad when none was asked for)
        if not self._chunks:
            raise DeviceNotFoundError(f"{self.path}: no keypad traffic to replay")
        self._next = 0
        self._start = time.monotonic()

    def write(self, data: bytes) -> None:
        if not self._chunks:
            raise DisconnectedError(f"{self.url} is not open")

    def read(self, timeout: float) -> bytes:
        if self._next >= len(self._chunks):
            raise DisconnectedError(f"{self.url}: end of capture")
        chunk = self._chunks[self._next]
        if self.speed > 0:
            due = (
                self._start + (chunk.timestamp_us - self._chunks[0].timestamp_us) / 1e6 / self.speed
            )
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

    def close(self) -> None:
        self._chunks = []
