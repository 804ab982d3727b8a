"""A keypad's traffic in a capture of a real USB bus: Linux usbmon and Windows USBPcap.

Each packet of such a capture is one USB request block (URB) with a pseudo-header. The keypad's
stream bytes are the data of its HID interrupt transfers: IN transfers (keypad to host) carry
them on completion, OUT transfers (host to keypad) on submission. The keypad is known by the
device descriptor (VID:PID) the host read from it during enumeration, when the capture holds
it, or named by the caller as ``BUS.ADDR``.

Pseudo-headers (little-endian, as written on the usual hosts):

- ``LINKTYPE_USB_LINUX`` (189): the 48-byte ``struct usbmon_packet`` of the kernel's
  Documentation/usb/usbmon.rst: id u64, type u8 ('S' submit, 'C' complete, 'E' error),
  xfer_type u8 (0 iso, 1 interrupt, 2 control, 3 bulk), epnum u8 (bit 7 = IN), devnum u8,
  busnum u16, flag_setup s8, flag_data s8, ts_sec s64, ts_usec s32, status s32, length u32,
  len_cap u32, setup/iso 8 bytes; then ``len_cap`` bytes of data.
- ``LINKTYPE_USB_LINUX_MMAPPED`` (220): the same, then interval s32, start_frame s32,
  xfer_flags u32, ndesc u32 (64 bytes), then ``ndesc`` 16-byte iso descriptors, then the data.
- ``LINKTYPE_USBPCAP`` (249): ``USBPCAP_BUFFER_PACKET_HEADER`` (packed): headerLen u16,
  irpId u64, status u32, function u16, info u8 (bit 0: 1 = completion, device to host),
  bus u16, device u16, endpoint u8 (bit 7 = IN), transfer u8 (same codes), dataLength u32;
  a control transfer adds a stage byte. The data follows ``headerLen`` bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from ..transports.usbid import PID, VID

Direction = Literal["in", "out"]
Transfer = tuple[str, Direction, int, bytes]
"""(device BUS.ADDR, direction, timestamp_us, data) of one interrupt transfer."""

LINKTYPE_USB_LINUX = 189
LINKTYPE_USB_LINUX_MMAPPED = 220
LINKTYPE_USBPCAP = 249
USB_LINK_TYPES = (LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED, LINKTYPE_USBPCAP)

XFER_ISO, XFER_INTERRUPT, XFER_CONTROL, XFER_BULK = 0, 1, 2, 3

USBMON = struct.Struct("<QBBBBHbbqiiII8s")  # 48 bytes
USBMON_MMAPPED_EXTRA = struct.Struct("<iiII")  # 16 more
USBPCAP = struct.Struct("<HQIHBHHBBI")  # 27 bytes


@dataclass(frozen=True, slots=True)
class Urb:
    """One URB packet: who, which way, what kind, and its data."""

    bus: int
    address: int
    endpoint: int  # with the direction bit
    transfer: int
    completion: bool
    data: bytes

    @property
    def device(self) -> str:
        return f"{self.bus}.{self.address}"


def parse_urb(link_type: int, packet: bytes) -> Urb | None:
    """The URB of one packet of a USB capture, or None if it is too short to be one."""
    if link_type in (LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED):
        if len(packet) < USBMON.size:
            return None
        (_, kind, xfer, ep, dev, bus, _, _, _, _, _, _, len_cap, _) = USBMON.unpack_from(packet)
        start = USBMON.size
        if link_type == LINKTYPE_USB_LINUX_MMAPPED:
            if len(packet) < start + USBMON_MMAPPED_EXTRA.size:
                return None
            ndesc = USBMON_MMAPPED_EXTRA.unpack_from(packet, start)[3]
            start += USBMON_MMAPPED_EXTRA.size + (16 * ndesc if xfer == XFER_ISO else 0)
        data = packet[start : start + len_cap]
        return Urb(bus, dev, ep, xfer, kind != ord("S"), data)
    if link_type == LINKTYPE_USBPCAP:
        if len(packet) < USBPCAP.size:
            return None
        (hlen, _, _, _, info, bus, dev, ep, xfer, dlen) = USBPCAP.unpack_from(packet)
        if hlen < USBPCAP.size:
            return None
        return Urb(bus, dev, ep, xfer, bool(info & 1), packet[hlen : hlen + dlen])
    return None


def usbmon_packet(
    *,
    bus: int,
    address: int,
    endpoint: int,
    transfer: int,
    submit: bool,
    data: bytes = b"",
    urb_id: int = 0,
    timestamp_us: int = 0,
    mmapped: bool = False,
    setup: bytes = b"",
) -> bytes:
    """One usbmon packet (189, or 220 with ``mmapped``), as the kernel writes it."""
    sec, usec = divmod(timestamp_us, 1_000_000)
    head = USBMON.pack(
        urb_id,
        ord("S") if submit else ord("C"),
        transfer,
        endpoint,
        address,
        bus,
        0 if setup else ord("-"),  # flag_setup: 0 = setup bytes present
        0 if data else ord("<" if submit else ">"),  # flag_data: 0 = data present
        sec,
        usec,
        -115 if submit else 0,  # -EINPROGRESS on submission
        len(data),
        len(data),
        setup.ljust(8, b"\0"),
    )
    if mmapped:
        head += USBMON_MMAPPED_EXTRA.pack(1 if transfer == XFER_INTERRUPT else 0, 0, 0, 0)
    return head + data


def usbpcap_packet(
    *,
    bus: int,
    address: int,
    endpoint: int,
    transfer: int,
    completion: bool,
    data: bytes = b"",
    irp_id: int = 0,
    stage: int | None = None,
) -> bytes:
    """One USBPcap packet (``USBPCAP_BUFFER_PACKET_HEADER`` + data)."""
    extra = b"" if stage is None else bytes([stage])
    function = 0x0008 if transfer == XFER_CONTROL else 0x0009  # CONTROL / BULK_OR_INTERRUPT
    head = USBPCAP.pack(
        USBPCAP.size + len(extra),
        irp_id,
        0,
        function,
        1 if completion else 0,
        bus,
        address,
        endpoint,
        transfer,
        len(data),
    )
    return head + extra + data


def device_descriptor(vid: int = VID, pid: int = PID) -> bytes:
    """A USB device descriptor (18 bytes) with this VID:PID."""
    return struct.pack("<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64, vid, pid, 0x0100, 1, 2, 3, 1)


class UsbDemux:
    """Collect a keypad's interrupt transfers from URBs, in capture order."""

    def __init__(self, device: str | None = None) -> None:
        self.wanted = device
        self.seen = False  # any USB packet at all
        self.ids: dict[str, tuple[int, int]] = {}  # BUS.ADDR -> VID:PID from its descriptor
        self._interrupts: list[Transfer] = []
        self._with_traffic: dict[str, None] = {}

    def feed(self, link_type: int, packet: bytes, timestamp_us: int) -> None:
        if link_type not in USB_LINK_TYPES:
            return
        self.seen = True
        urb = parse_urb(link_type, packet)
        if urb is None or not urb.data:
            return
        if urb.transfer == XFER_CONTROL:
            d = urb.data
            if urb.completion and len(d) >= 18 and d[0] == 18 and d[1] == 1:
                vid, pid = struct.unpack_from("<HH", d, 8)
                self.ids[urb.device] = (vid, pid)
            return
        if urb.transfer != XFER_INTERRUPT:
            return
        direction: Direction = "in" if urb.endpoint & 0x80 else "out"
        # IN data arrives with the completion, OUT data goes with the submission
        if urb.completion != (direction == "in"):
            return
        self._with_traffic[urb.device] = None
        self._interrupts.append((urb.device, direction, timestamp_us, urb.data))

    def keypads(self) -> set[str]:
        if self.wanted is not None:
            return {self.wanted}
        return {dev for dev, ident in self.ids.items() if ident == (VID, PID)}

    def transfers(self) -> list[Transfer]:
        """The keypads' interrupt transfers, in capture order."""
        keep = self.keypads()
        return [t for t in self._interrupts if t[0] in keep]

    def devices_with_traffic(self) -> list[str]:
        return list(self._with_traffic)

    def nothing_found(self) -> str:
        """Why a USB capture gave no keypad traffic, in one line."""
        others = ", ".join(self._with_traffic) or "none"
        if self.wanted is not None:
            return (
                f"no interrupt transfers of device {self.wanted} in this USB capture "
                f"(devices with interrupt traffic: {others})"
            )
        return (
            f"no keypad ({VID:04x}:{PID:04x}) enumerates in this USB capture; name it with "
            f"--device BUS.ADDR (devices with interrupt traffic: {others})"
        )
