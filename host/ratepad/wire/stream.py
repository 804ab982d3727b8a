"""Sans-IO stream decoder: bytes in, decoded frames and bad spans out.

Frames are COBS-encoded and end with 0x00, so the decoder resynchronises at every delimiter.
Within a span that fails to decode it also looks for an intact frame at a later start (garbage
or a truncated frame glued to the front of a good one with no delimiter between them), using the
COBS code chain to find the few candidate starts. Everything that is not an intact frame is
reported as a ``BadSpan`` with its byte offset; nothing is raised and memory stays bounded.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from cobs import cobs

from ..errors import FrameError
from .codec import (
    _DECODERS,
    CRC_RESIDUE,
    HEADER_SIZE,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    HeaderFlags,
    Message,
    _C_HeaderFlags,
    decode_body,
)

__all__ = ["BadSpan", "Frame", "StreamDecoder", "decode_stream"]

_cobs_decode = cobs.decode
_DecodeError = cobs.DecodeError
_crc32 = zlib.crc32
_new = tuple.__new__
_MIN_BODY = HEADER_SIZE + 4


class Frame(NamedTuple):
    """An intact frame: where it starts in the stream, its header fields and its message."""

    offset: int
    seq: int
    flags: HeaderFlags
    message: Message


class BadSpan(NamedTuple):
    """Bytes that are not an intact frame: ``kind`` as in ``FrameError.kind``."""

    offset: int
    length: int
    kind: str
    detail: str


def _decode(span: bytes, offset: int) -> Frame:
    try:
        body = _cobs_decode(span)
    except _DecodeError as exc:
        raise FrameError("cobs", str(exc)) from None
    header, message = decode_body(body)
    return Frame(offset, header.seq, header.flags, message)


def _chain_starts(span: bytes, first: int) -> list[int]:
    """Starts >= ``first`` whose COBS code chain ends exactly at the end of ``span``."""
    n = len(span)
    lands = [False] * (n + 1)
    lands[n] = True
    for i in range(n - 1, first - 1, -1):
        nxt = i + span[i]
        lands[i] = nxt <= n and lands[nxt]
    return [i for i in range(first, n) if lands[i]]


class StreamDecoder:
    """Feed bytes as they arrive; get back frames and bad spans, in stream order.

    At most ``max_frame`` bytes are kept while waiting for a delimiter; bytes before them are
    dropped and reported as part of a ``too_long`` span, but an intact frame at the end of such a
    run is still recovered.
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._window = max_frame - 1  # longest COBS span of a legal frame
        self._pending = b""
        self._offset = 0  # stream offset of the first pending byte
        self._dropped = 0  # bytes of the current span already dropped before _pending

    @property
    def offset(self) -> int:
        """Total bytes consumed so far (the offset of the next byte fed)."""
        return self._offset + len(self._pending)

    def feed(self, data: bytes) -> list[Frame | BadSpan]:
        """Decode every frame completed by ``data``."""
        out: list[Frame | BadSpan] = []
        if not data:
            return out
        append = out.append
        buf = self._pending + data if self._pending else bytes(data)
        parts = buf.split(b"\x00")
        tail = parts.pop()
        offset = self._offset
        for part in parts:
            if self._dropped or len(part) > self._window:
                self._span(part, offset, out)
                self._dropped = 0
            elif part:
                # Fast path for an intact frame of a known type; anything else (and any doubt)
                # goes through the checked path below, which reports the exact error.
                try:
                    body = _cobs_decode(part)
                    if (
                        len(body) >= _MIN_BODY
                        and _crc32(body) == CRC_RESIDUE
                        and body[0] == PROTOCOL_VERSION
                    ):
                        message = _DECODERS[body[2]](body[5:-4])
                        append(
                            _new(
                                Frame,
                                (offset, body[3] | body[4] << 8, _C_HeaderFlags[body[1]], message),
                            )
                        )
                        offset += len(part) + 1
                        continue
                except Exception:
                    pass
                try:
                    append(_decode(part, offset))
                except FrameError as exc:
                    self._resync(part, offset, 1, exc, out)
            offset += len(part) + 1
        if len(tail) > self._window:
            cut = len(tail) - self._window
            self._dropped += cut
            offset += cut
            tail = tail[cut:]
        self._pending = tail
        self._offset = offset
        return out

    def finish(self) -> list[BadSpan]:
        """End of input: report a frame left without its delimiter, and reset."""
        out: list[BadSpan] = []
        if self._pending or self._dropped:
            out.append(
                BadSpan(
                    self._offset - self._dropped,
                    self._dropped + len(self._pending),
                    "truncated",
                    "input ended inside a frame",
                )
            )
        self._offset += len(self._pending)
        self._pending = b""
        self._dropped = 0
        return out

    def _span(self, part: bytes, offset: int, out: list[Frame | BadSpan]) -> None:
        """A span longer than any frame: only its last window can hold an intact frame."""
        error = FrameError("too_long", f"no delimiter within {self._window + 1} bytes")
        first = max(0 if self._dropped else 1, len(part) - self._window)
        self._resync(part, offset, first, error, out, self._dropped)

    @staticmethod
    def _resync(
        part: bytes,
        offset: int,
        first: int,
        error: FrameError,
        out: list[Frame | BadSpan],
        dropped: int = 0,
    ) -> None:
        for start in _chain_starts(part, first):
            try:
                frame = _decode(part[start:], offset + start)
            except FrameError:
                continue
            if dropped + start:
                out.append(BadSpan(offset - dropped, dropped + start, error.kind, error.detail))
            out.append(frame)
            return
        out.append(BadSpan(offset - dropped, dropped + len(part) + 1, error.kind, error.detail))


def decode_stream(data: bytes) -> list[Frame | BadSpan]:
    """Decode a complete byte stream (a truncated last frame is reported too)."""
    decoder = StreamDecoder()
    items = decoder.feed(data)
    items.extend(decoder.finish())
    return items
