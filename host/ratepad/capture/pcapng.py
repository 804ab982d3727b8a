"""pcapng captures of ratepad links (read and written with python-pcapng).

Layout: one Interface Description Block per keypad (``if_name`` = device id, link type
``LINKTYPE_USER0`` = 147, microsecond timestamps) and one Enhanced Packet Block per chunk of stream
bytes as it crossed the link (for USB, the stream bytes of one HID report). The ``epb_flags``
direction says who sent it: ``inbound`` = keypad to host ("in", like a USB IN transfer),
``outbound`` = host to keypad ("out").
"""

from __future__ import annotations

import io
import struct
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ..errors import RatepadError

LINKTYPE_RATEPAD = 147  # LINKTYPE_USER0: private use, bound to the ratepad dissector
Direction = Literal["in", "out"]
_INOUT = {"in": "inbound", "out": "outbound"}


class CaptureError(RatepadError):
    """A capture file that cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Stream bytes that crossed one link in one direction at one moment."""

    device: str
    direction: Direction
    timestamp_us: int
    data: bytes


class CaptureWriter:
    """Append chunks to a new pcapng file; every chunk is flushed as it is written."""

    def __init__(self, target: str | Path | BinaryIO, application: str = "ratepad") -> None:
        from pcapng import FileWriter, blocks

        self._blocks = blocks
        if isinstance(target, str | Path):
            try:
                self._stream: BinaryIO = open(target, "wb")  # noqa: SIM115 (closed in close())
            except OSError as exc:
                raise CaptureError(f"cannot write {target}: {exc.strerror or exc}") from None
            self._owns = True
        else:
            self._stream = target
            self._owns = False
        self._shb = blocks.SectionHeader(options={"shb_userappl": application})
        self._writer = FileWriter(self._stream, self._shb)
        self._interfaces: dict[str, int] = {}

    def add_device(self, device: str, description: str = "ratepad keypad") -> int:
        """The interface index of ``device``, declaring it on first use."""
        index = self._interfaces.get(device)
        if index is None:
            # no if_tsresol option: the pcapng default resolution is the microsecond
            idb = self._shb.new_member(
                self._blocks.InterfaceDescription,
                link_type=LINKTYPE_RATEPAD,
                snaplen=0,
                options={"if_name": device, "if_description": description},
            )
            self._writer.write_block(idb)
            index = self._interfaces[device] = idb.interface_id
        return index

    def write(
        self, device: str, direction: Direction, data: bytes, timestamp_us: int | None = None
    ) -> None:
        """Record ``data`` sent in ``direction`` on ``device``'s link (now, by default)."""
        from pcapng.structs import EPBFlags

        index = self.add_device(device)
        ts = time.time_ns() // 1000 if timestamp_us is None else timestamp_us
        flags = EPBFlags(0)
        flags.inout = _INOUT[direction]
        epb = self._shb.new_member(
            self._blocks.EnhancedPacket,
            interface_id=index,
            timestamp_high=ts >> 32,
            timestamp_low=ts & 0xFFFFFFFF,
            packet_data=bytes(data),
            options={"epb_flags": flags},
        )
        self._writer.write_block(epb)
        self._stream.flush()

    def close(self) -> None:
        if self._owns:
            self._stream.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolution_us(idb: Any) -> tuple[int, int]:
    """(numerator, denominator) turning raw timestamp units into microseconds."""
    raw = idb.options.get("if_tsresol") if "if_tsresol" in idb.options else None
    if not raw:
        return 1, 1  # the pcapng default is microseconds
    num = raw[0] if isinstance(raw, bytes | bytearray) else int(raw)
    exponent = num & 0x7F
    if num & 0x80:
        return 1_000_000, 1 << exponent
    return (10 ** (6 - exponent), 1) if exponent <= 6 else (1, 10 ** (exponent - 6))


def iter_capture(source: str | Path | bytes) -> Iterator[Chunk]:
    """The chunks of a pcapng capture in file order; raises CaptureError on a bad file."""
    from pcapng import FileScanner, blocks
    from pcapng.exceptions import PcapngException

    if isinstance(source, bytes):
        stream: BinaryIO = io.BytesIO(source)
    else:
        try:
            stream = io.BytesIO(Path(source).read_bytes())
        except OSError as exc:
            raise CaptureError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # python-pcapng's own options
            blocks_read = list(FileScanner(stream))
    except (PcapngException, ValueError, KeyError, EOFError, struct.error) as exc:
        raise CaptureError(f"not a readable pcapng capture: {exc}") from None
    try:
        for block in blocks_read:
            if not isinstance(block, blocks.EnhancedPacket):
                continue
            idb = block.interface
            if idb.link_type != LINKTYPE_RATEPAD:
                continue
            name = idb.options["if_name"] if "if_name" in idb.options else str(block.interface_id)
            inout = block.options["epb_flags"].inout if "epb_flags" in block.options else "NA"
            direction: Direction = "out" if inout == "outbound" else "in"
            mul, div = _resolution_us(idb)
            raw_ts = (block.timestamp_high << 32) | block.timestamp_low
            yield Chunk(str(name), direction, raw_ts * mul // div, bytes(block.packet_data))
    except (PcapngException, ValueError, KeyError) as exc:
        raise CaptureError(f"not a readable pcapng capture: {exc}") from None


def read_capture(source: str | Path | bytes) -> list[Chunk]:
    """Every chunk of a pcapng capture, in file order."""
    return list(iter_capture(source))
