"""Captures of keypad links: pcapng files (blocks read and written with dpkt), and classic pcap.

ratepad's own layout: one Interface Description Block per keypad (``if_name`` = device id, link
type ``LINKTYPE_USER0`` = 147, microsecond timestamps) and one Enhanced Packet Block per chunk
of stream bytes as it crossed the link (for USB, the stream bytes of one HID report). The
``epb_flags`` direction says who sent it: ``inbound`` = keypad to host ("in", like a USB IN
transfer), ``outbound`` = host to keypad ("out").

Captures of a real USB bus are read too (``ratepad.capture.usb``): Linux usbmon
(``LINKTYPE_USB_LINUX`` 189, ``LINKTYPE_USB_LINUX_MMAPPED`` 220) and Windows USBPcap
(``LINKTYPE_USBPCAP`` 249), in pcapng or classic pcap files; the keypad's HID interrupt
transfers become chunks of device ``BUS.ADDR``.

A file cut in the middle of a block (a capture still being written, a copy that stopped) gives
every complete block before the cut; ``Scan.cut`` says where the cut is.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ..errors import RatepadError

LINKTYPE_RATEPAD = 147  # LINKTYPE_USER0: private use, bound to the ratepad dissector
Direction = Literal["in", "out"]
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
MAX_CAPTURE_BYTES = 2 << 30  # a capture larger than this is refused (read into memory whole)

_EPB_FLAGS = 2  # epb_flags option code
_INBOUND, _OUTBOUND = 1, 2
_BT_SHB, _BT_IDB, _BT_EPB, _BT_SPB = 0x0A0D0D0A, 1, 6, 3


class CaptureError(RatepadError):
    """A capture file that cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Stream bytes that crossed one link in one direction at one moment."""

    device: str
    direction: Direction
    timestamp_us: int
    data: bytes


@dataclass
class Scan:
    """What a capture holds: its chunks in file order, and where it was cut (if it was)."""

    chunks: list[Chunk] = field(default_factory=list)
    cut: str | None = None
    usb_devices: list[str] = field(default_factory=list)  # BUS.ADDR with interrupt traffic


class CaptureWriter:
    """Append chunks to a new pcapng file; every chunk is flushed as it is written."""

    def __init__(self, target: str | Path | BinaryIO, application: str = "ratepad") -> None:
        from dpkt import pcapng

        self._pcapng = pcapng
        if isinstance(target, str | Path):
            try:
                self._stream: BinaryIO = open(target, "wb")  # noqa: SIM115 (closed in close())
            except OSError as exc:
                raise CaptureError(f"cannot write {target}: {exc.strerror or exc}") from None
            self._owns = True
        else:
            self._stream = target
            self._owns = False
        shb = pcapng.SectionHeaderBlockLE(
            opts=[
                pcapng.PcapngOptionLE(
                    code=pcapng.PCAPNG_OPT_SHB_USERAPPL, data=application.encode()
                ),
                pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_ENDOFOPT),
            ]
        )
        self._stream.write(bytes(shb))
        self._interfaces: dict[str, int] = {}

    def add_device(
        self, device: str, description: str = "ratepad keypad", link_type: int = LINKTYPE_RATEPAD
    ) -> int:
        """The interface index of ``device``, declaring it on first use."""
        index = self._interfaces.get(device)
        if index is None:
            p = self._pcapng
            # no if_tsresol option: the pcapng default resolution is the microsecond
            idb = p.InterfaceDescriptionBlockLE(
                linktype=link_type,
                snaplen=0,
                opts=[
                    p.PcapngOptionLE(code=p.PCAPNG_OPT_IF_NAME, data=device.encode()),
                    p.PcapngOptionLE(code=p.PCAPNG_OPT_IF_DESCRIPTION, data=description.encode()),
                    p.PcapngOptionLE(code=p.PCAPNG_OPT_ENDOFOPT),
                ],
            )
            self._stream.write(bytes(idb))
            index = self._interfaces[device] = len(self._interfaces)
        return index

    def write_packet(
        self, index: int, data: bytes, timestamp_us: int, flags: int | None = None
    ) -> None:
        """One Enhanced Packet Block on interface ``index`` (``flags``: epb_flags)."""
        p = self._pcapng
        opts = []
        if flags is not None:
            opts = [
                p.PcapngOptionLE(code=_EPB_FLAGS, data=struct.pack("<I", flags)),
                p.PcapngOptionLE(code=p.PCAPNG_OPT_ENDOFOPT),
            ]
        epb = p.EnhancedPacketBlockLE(
            iface_id=index,
            ts_high=timestamp_us >> 32,
            ts_low=timestamp_us & 0xFFFFFFFF,
            pkt_data=bytes(data),
            opts=opts,
        )
        self._stream.write(bytes(epb))

    def write(
        self,
        device: str,
        direction: Direction,
        data: bytes,
        timestamp_us: int | None = None,
        flush: bool = True,
    ) -> None:
        """Record ``data`` sent in ``direction`` on ``device``'s link (now, by default)."""
        index = self.add_device(device)
        ts = time.time_ns() // 1000 if timestamp_us is None else timestamp_us
        self.write_packet(index, data, ts, _INBOUND if direction == "in" else _OUTBOUND)
        if flush:
            self._stream.flush()

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Interface:
    link_type: int
    name: str
    mul: int = 1  # raw timestamp units -> microseconds: * mul // div
    div: int = 1


def _tsresol(value: int) -> tuple[int, int]:
    exponent = value & 0x7F
    if value & 0x80:
        return 1_000_000, 1 << exponent
    return (10 ** (6 - exponent), 1) if exponent <= 6 else (1, 10 ** (exponent - 6))


def _read(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        size = Path(source).stat().st_size
        if size > MAX_CAPTURE_BYTES:
            raise CaptureError(
                f"{source}: {size:,} bytes, more than the {MAX_CAPTURE_BYTES:,} a capture may hold"
            )
        return Path(source).read_bytes()
    except OSError as exc:
        raise CaptureError(f"cannot read {source}: {exc.strerror or exc}") from None


def scan_capture(source: str | Path | bytes, usb_device: str | None = None) -> Scan:
    """Read a capture (pcapng or pcap; ratepad's own link type, usbmon or USBPcap).

    ``usb_device`` (``BUS.ADDR``) picks the keypad on a USB capture; by default the devices
    whose device descriptor in the capture has the keypad's VID:PID. Raises CaptureError on a
    file that is not a capture at all.
    """
    from .usb import UsbDemux

    data = _read(source)
    usb = UsbDemux(usb_device)
    scan = Scan()
    if not data:  # a capture not yet written to
        return scan
    if data[:4] == PCAPNG_MAGIC:
        _scan_pcapng(data, scan, usb)
    elif data[:4] in PCAP_MAGICS:
        _scan_pcap(data, scan, usb)
    else:
        raise CaptureError("not a pcapng or pcap capture")
    scan.chunks.extend(Chunk(*t) for t in usb.transfers())
    scan.usb_devices = usb.devices_with_traffic()
    if usb.seen and not scan.chunks and scan.cut is None:
        raise CaptureError(usb.nothing_found())
    return scan


def _scan_pcapng(data: bytes, scan: Scan, usb: Any) -> None:
    from dpkt import UnpackError, pcapng

    view = len(data)
    pos = 0
    le = True
    interfaces: list[_Interface] = []
    out = scan.chunks
    unpack_from = struct.unpack_from
    epb_cls: Any = pcapng.EnhancedPacketBlockLE
    while pos < view:
        if view - pos < 12:
            scan.cut = f"cut at byte {pos}: {view - pos} bytes of a block header"
            return
        btype = unpack_from("<I", data, pos)[0]
        if btype == _BT_SHB:
            bom = data[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                le = True
            elif bom == b"\x1a\x2b\x3c\x4d":
                le = False
            else:
                raise CaptureError(f"not a readable pcapng capture: bad byte-order magic at {pos}")
            interfaces = []  # a new section: interface ids start again
            epb_cls = pcapng.EnhancedPacketBlockLE if le else pcapng.EnhancedPacketBlock
        fmt = "<II" if le else ">II"
        btype, blen = unpack_from(fmt, data, pos)
        if blen < 12 or blen % 4:
            if pos == 0:
                raise CaptureError(f"not a readable pcapng capture: block length {blen}")
            scan.cut = f"bad block length {blen} at byte {pos}"
            return
        if pos + blen > view:
            scan.cut = f"cut at byte {pos}: a block of {blen} bytes has {view - pos}"
            return
        block = data[pos : pos + blen]
        try:
            if btype == _BT_EPB:
                epb = epb_cls(block)
                try:
                    iface = interfaces[epb.iface_id]
                except IndexError:
                    raise CaptureError(
                        f"not a readable pcapng capture: packet on undeclared interface "
                        f"{epb.iface_id} at byte {pos}"
                    ) from None
                ts = ((epb.ts_high << 32) | epb.ts_low) * iface.mul // iface.div
                if iface.link_type == LINKTYPE_RATEPAD:
                    flags = 0
                    for opt in epb.opts:
                        if opt.code == _EPB_FLAGS and len(opt.data) >= 4:
                            flags = unpack_from("<I" if le else ">I", opt.data)[0]
                    direction: Direction = "out" if flags & 3 == _OUTBOUND else "in"
                    out.append(Chunk(iface.name, direction, ts, bytes(epb.pkt_data)))
                else:
                    usb.feed(iface.link_type, bytes(epb.pkt_data), ts)
            elif btype == _BT_IDB:
                idb = (
                    pcapng.InterfaceDescriptionBlockLE if le else pcapng.InterfaceDescriptionBlock
                )(block)
                iface = _Interface(idb.linktype, str(len(interfaces)))
                for opt in idb.opts:
                    if opt.code == pcapng.PCAPNG_OPT_IF_NAME:
                        iface.name = bytes(opt.data).rstrip(b"\0").decode("utf-8", "replace")
                    elif opt.code == pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
                        iface.mul, iface.div = _tsresol(opt.data[0])
                interfaces.append(iface)
        except (UnpackError, struct.error, ValueError) as exc:
            raise CaptureError(
                f"not a readable pcapng capture: block at byte {pos}: {exc}"
            ) from None
        pos += blen


def _scan_pcap(data: bytes, scan: Scan, usb: Any) -> None:
    import io

    from dpkt import NeedData, UnpackError, pcap

    try:
        reader = pcap.Reader(io.BytesIO(data))
        link_type = reader.datalink()
        for ts, buf in reader:
            # dpkt gives a float; microseconds from it are exact for captures of this era
            us = round(ts * 1e6)
            if link_type == LINKTYPE_RATEPAD:
                scan.chunks.append(Chunk("0", "in", us, bytes(buf)))
            else:
                usb.feed(link_type, bytes(buf), us)
    except NeedData:
        scan.cut = "cut inside the last packet record"
    except (UnpackError, ValueError, struct.error) as exc:
        raise CaptureError(f"not a readable pcap capture: {exc}") from None


def iter_capture(source: str | Path | bytes) -> Iterator[Chunk]:
    """The chunks of a capture in file order; raises CaptureError on a bad or cut file."""
    yield from read_capture(source)


def read_capture(source: str | Path | bytes, usb_device: str | None = None) -> list[Chunk]:
    """Every chunk of a capture, in file order; CaptureError if it is not whole."""
    scan = scan_capture(source, usb_device)
    if scan.cut is not None:
        raise CaptureError(f"the capture is cut short ({scan.cut})")
    return scan.chunks
