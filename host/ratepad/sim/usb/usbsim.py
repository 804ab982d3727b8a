"""A pyusb backend with simulated keypads on its bus: ``usb://`` (and any pyusb code) without
hardware or libusb.

    backend = SimulatedUsbBackend([ratepad.sim.get("RP-0001")])
    dev = usb.core.find(idVendor=VID, idProduct=PID, backend=backend)   # plain pyusb from here

``SimulatedUsbBackend`` implements ``usb.backend.IBackend`` the way pyusb's libusb1 backend
behaves on Linux, over a ``SimulatedBus`` (see ``hidsim``):

* descriptors: the keypad's own bytes (``DEVICE_DESCRIPTOR``, ``CONFIG_DESCRIPTOR``: MicroPython's
  CDC ACM behind an IAD on interfaces 0-1, then the vendor HID interface 2 with interrupt
  endpoints 0x83 IN and 0x03 OUT of 64 bytes, as firmware/rpfw/usbhid.py builds them), parsed
  into descriptor objects like libusb's (class-specific descriptors in ``extra_descriptors``)
  and served again by standard GET_DESCRIPTOR control requests (device, configuration, strings,
  HID report descriptor), so ``dev.serial_number`` and friends work;
* the OS state: the device is configured at plug time (configuration 1) with ``cdc_acm`` and
  ``usbhid`` bound, so claiming an interface needs ``detach_kernel_driver`` first and
  ``set_configuration`` is refused while interfaces are bound (EBUSY), as with usbfs;
* transfers: claiming the HID interface brings the keypad's link up; an interrupt OUT transfer
  is stream bytes for the keypad (zero padding is harmless); an interrupt IN transfer returns the
  next 64-byte report or raises ``USBTimeoutError`` (timeout 0 waits for ever, as in libusb);
* errors: ``USBError`` with libusb's code, message and errno (ENODEV after ``unplug``, EACCES /
  EBUSY with ``bus.refuse``, EBUSY for an interface another handle claimed, ...). The CDC REPL
  is not simulated (bulk transfers are not implemented).
"""

from __future__ import annotations

import array
import errno
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from ...tools import fwsource as _firmware
from .. import RealtimeKeypad
from .hidsim import (
    CDC_INTERFACES,
    HID_INTERFACE,
    REPORT_SIZE,
    Gone,
    Port,
    Refused,
    SimulatedBus,
    registry_bus,
)

__all__ = [
    "CONFIG_DESCRIPTOR",
    "DEVICE_DESCRIPTOR",
    "REPORT_DESCRIPTOR",
    "SimulatedUsbBackend",
    "registry_backend",
]

# The descriptors are the firmware's own (firmware/sim/usbdesc.py builds them with
# firmware/rpfw/usbhid.py): one definition, so the simulated keypad cannot drift from the real one.
_DESC: tuple[Any, ...] = _firmware.load("sim.usbdesc").keypad_descriptors()
DEVICE_DESCRIPTOR: bytes = _DESC[0]
CONFIG_DESCRIPTOR: bytes = _DESC[1]
REPORT_DESCRIPTOR: bytes = _DESC[2]
STRINGS: dict[int, str] = {i: s for i, s in _DESC[3].items() if i != 3}  # 3: each keypad's serial
EP_IN: int = _DESC[5]  # the HID interface's interrupt endpoints
EP_OUT: int = _DESC[6]


def _descriptor_of_type(cfg: bytes, kind: int) -> bytes:
    o = 0
    while o < len(cfg):
        if cfg[o + 1] == kind:
            return cfg[o : o + cfg[o]]
        o += cfg[o]
    raise ValueError(f"no descriptor of type {kind:#x}")


_HID_CLASS_DESCRIPTOR = _descriptor_of_type(CONFIG_DESCRIPTOR, 0x21)
LANGID_EN_US = 0x0409
SPEED_FULL = 2  # libusb_speed

# libusb error codes with the message and errno pyusb's libusb1 backend gives them
_ERRORS = {
    errno.EIO: (-1, "Input/output error"),
    errno.EINVAL: (-2, "Invalid parameter"),
    errno.EACCES: (-3, "Access denied (insufficient permissions)"),
    errno.ENODEV: (-4, "No such device (it may have been disconnected)"),
    errno.ENOENT: (-5, "Entity not found"),
    errno.EBUSY: (-6, "Resource busy"),
    errno.ETIMEDOUT: (-7, "Operation timed out"),
    errno.EOVERFLOW: (-8, "Overflow"),
    errno.EPIPE: (-9, "Pipe error"),
}


def usb_error(err: int) -> usb.core.USBError:
    """The USBError pyusb's libusb1 backend raises for ``err`` (an errno)."""
    code, text = _ERRORS.get(err, (-99, "Unknown error"))
    cls = usb.core.USBTimeoutError if err == errno.ETIMEDOUT else usb.core.USBError
    error: usb.core.USBError = cls(text, code, err)
    return error


# -- descriptors ----------------------------------------------------------------------------------
_DEVICE_FIELDS = [
    "bLength",
    "bDescriptorType",
    "bcdUSB",
    "bDeviceClass",
    "bDeviceSubClass",
    "bDeviceProtocol",
    "bMaxPacketSize0",
    "idVendor",
    "idProduct",
    "bcdDevice",
    "iManufacturer",
    "iProduct",
    "iSerialNumber",
    "bNumConfigurations",
]


def _device_descriptor() -> SimpleNamespace:
    d = DEVICE_DESCRIPTOR
    values = [d[0], d[1], _u16(d, 2), d[4], d[5], d[6], d[7]]
    values += [_u16(d, 8), _u16(d, 10), _u16(d, 12), d[14], d[15], d[16], d[17]]
    return SimpleNamespace(**dict(zip(_DEVICE_FIELDS, values, strict=True)))


def _u16(d: bytes, i: int) -> int:
    return d[i] | d[i + 1] << 8


def _parse_configuration(raw: bytes) -> SimpleNamespace:
    """A configuration descriptor as libusb parses it: interfaces[i][alt] with endpoints;
    descriptors it does not know go to ``extra_descriptors`` of what precedes them."""
    cfg = SimpleNamespace(
        bLength=raw[0],
        bDescriptorType=raw[1],
        wTotalLength=_u16(raw, 2),
        bNumInterfaces=raw[4],
        bConfigurationValue=raw[5],
        iConfiguration=raw[6],
        bmAttributes=raw[7],
        bMaxPower=raw[8],
        extra_descriptors=[],
        interfaces=[],
    )
    current: SimpleNamespace = cfg
    intf: SimpleNamespace | None = None
    o = raw[0]
    while o < len(raw):
        n, kind = raw[o], raw[o + 1]
        d = raw[o : o + n]
        if kind == 4:
            intf = SimpleNamespace(
                bLength=d[0],
                bDescriptorType=d[1],
                bInterfaceNumber=d[2],
                bAlternateSetting=d[3],
                bNumEndpoints=d[4],
                bInterfaceClass=d[5],
                bInterfaceSubClass=d[6],
                bInterfaceProtocol=d[7],
                iInterface=d[8],
                extra_descriptors=[],
                endpoints=[],
            )
            if intf.bAlternateSetting == 0:
                cfg.interfaces.append([intf])
            else:
                cfg.interfaces[-1].append(intf)
            current = intf
        elif kind == 5 and intf is not None:
            ep = SimpleNamespace(
                bLength=d[0],
                bDescriptorType=d[1],
                bEndpointAddress=d[2],
                bmAttributes=d[3],
                wMaxPacketSize=_u16(d, 4),
                bInterval=d[6],
                bRefresh=0,
                bSynchAddress=0,
                extra_descriptors=[],
            )
            intf.endpoints.append(ep)
            current = ep
        else:
            current.extra_descriptors.extend(d)
        o += n
    return cfg


_CONFIGURATION = _parse_configuration(CONFIG_DESCRIPTOR)


def _string_descriptor(text: str) -> bytes:
    body = text.encode("utf-16-le")
    return bytes((2 + len(body), 3)) + body


# -- the backend ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _DeviceId:
    port: Port
    generation: int


class _Handle:
    def __init__(self, port: Port, generation: int) -> None:
        self.port = port
        self.generation = generation
        self.link: Any = None  # the hidsim Link while the HID interface is claimed
        self.closed = False

    @property
    def alive(self) -> bool:
        return not self.closed and self.port.plugged and self.port.generation == self.generation


class SimulatedUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """A pyusb backend whose bus holds simulated keypads (``keypads`` or an existing ``bus``;
    neither: the ``ratepad.sim`` registry's keypads, on ``hidsim.registry_bus()``)."""

    def __init__(
        self, keypads: Iterable[RealtimeKeypad] | None = None, *, bus: SimulatedBus | None = None
    ) -> None:
        super().__init__()
        if bus is None:
            bus = registry_bus() if keypads is None else SimulatedBus(keypads)
        self.bus = bus

    # the cable (see SimulatedBus)
    def unplug(self, serial: str) -> None:
        self.bus.unplug(serial)

    def replug(self, serial: str, reboot: bool = True) -> None:
        self.bus.replug(serial, reboot)

    # -- enumeration and descriptors (no handle needed, as libusb reads them from sysfs) -------
    def enumerate_devices(self) -> list[_DeviceId]:
        return [_DeviceId(p, p.generation) for p in self.bus.plugged()]

    def get_parent(self, dev: _DeviceId) -> None:
        return None

    def get_device_descriptor(self, dev: _DeviceId) -> SimpleNamespace:
        desc = _device_descriptor()
        desc.bus = self.bus.number
        desc.address = dev.port.address
        desc.port_number = dev.port.number
        desc.port_numbers = (dev.port.number,)
        desc.speed = SPEED_FULL
        return desc

    def get_configuration_descriptor(self, dev: _DeviceId, config: int) -> SimpleNamespace:
        if config != 0:
            raise usb_error(errno.ENOENT)
        return _CONFIGURATION

    def get_interface_descriptor(
        self, dev: _DeviceId, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        cfg = self.get_configuration_descriptor(dev, config)
        if intf >= len(cfg.interfaces):
            raise IndexError(f"Invalid interface index {intf}")
        if alt >= len(cfg.interfaces[intf]):
            raise IndexError(f"Invalid alternate setting index {alt}")
        found: SimpleNamespace = cfg.interfaces[intf][alt]
        return found

    def get_endpoint_descriptor(
        self, dev: _DeviceId, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        i = self.get_interface_descriptor(dev, intf, alt, config)
        if ep >= len(i.endpoints):
            raise IndexError(f"Invalid endpoint index {ep}")
        found: SimpleNamespace = i.endpoints[ep]
        return found

    # -- handles ----------------------------------------------------------------------------
    def open_device(self, dev: _DeviceId) -> _Handle:
        port = dev.port
        if not port.plugged or port.generation != dev.generation:
            raise usb_error(errno.ENODEV)
        if port.refuse:
            raise usb_error(port.refuse)
        return _Handle(port, dev.generation)

    def close_device(self, dev_handle: _Handle) -> None:
        for intf, holder in list(dev_handle.port.claims.items()):
            if holder is dev_handle:
                self._release(dev_handle, intf)
        dev_handle.closed = True

    def _alive(self, h: _Handle) -> Port:
        if not h.alive:
            raise usb_error(errno.ENODEV)
        return h.port

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        port = self._alive(dev_handle)
        if config_value not in (0, _CONFIGURATION.bConfigurationValue):
            raise usb_error(errno.ENOENT)
        if port.kernel_drivers or port.claims:
            raise usb_error(errno.EBUSY)  # usbfs: interfaces are bound or claimed
        port.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        return self._alive(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        port = self._alive(dev_handle)
        if port.claims.get(intf) is not dev_handle or altsetting != 0:
            raise usb_error(errno.ENOENT)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        port = self._alive(dev_handle)
        if port.configuration == 0 or intf not in (*CDC_INTERFACES, HID_INTERFACE):
            raise usb_error(errno.ENOENT)
        holder = port.claims.get(intf)
        if holder is dev_handle:
            return
        if holder is not None or intf in port.kernel_drivers:
            raise usb_error(errno.EBUSY)
        if intf == HID_INTERFACE:
            try:
                dev_handle.link = self.bus.take_link(port, dev_handle)
            except Refused as exc:
                raise usb_error(exc.errno) from None
            except Gone:
                raise usb_error(errno.ENODEV) from None
        port.claims[intf] = dev_handle

    def _release(self, h: _Handle, intf: int) -> None:
        if h.port.claims.get(intf) is h:
            del h.port.claims[intf]
        if intf == HID_INTERFACE and h.link is not None:
            self.bus.drop_link(h.link)
            h.link = None

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        claimed = dev_handle.port.claims.get(intf) is dev_handle
        self._release(dev_handle, intf)
        self._alive(dev_handle)
        if not claimed:
            raise usb_error(errno.ENOENT)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return intf in self._alive(dev_handle).kernel_drivers

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        port = self._alive(dev_handle)
        if intf not in port.kernel_drivers:
            raise usb_error(errno.ENOENT)
        port.kernel_drivers.discard(intf)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        port = self._alive(dev_handle)
        if intf in port.kernel_drivers or intf in port.claims:
            raise usb_error(errno.EBUSY)
        port.kernel_drivers.add(intf)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._alive(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        port = self._alive(dev_handle)
        if port.holder is not None:  # the link drops and comes back
            port.keypad.disconnect()
            port.keypad.connect()

    # -- transfers --------------------------------------------------------------------------
    def _hid_link(self, h: _Handle, ep: int, ep_wanted: int) -> Any:
        self._alive(h)
        if ep != ep_wanted:
            raise usb_error(errno.EINVAL)
        if h.link is None:  # usbfs claims on first use; pyusb claimed already
            self.claim_interface(h, HID_INTERFACE)
        return h.link

    def intr_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array.array[int], timeout: int
    ) -> int:
        link = self._hid_link(dev_handle, ep, EP_OUT)
        payload = bytes(data)
        try:
            for i in range(0, len(payload), REPORT_SIZE):  # one packet per 64 bytes
                link.write(payload[i : i + REPORT_SIZE])
        except Gone:
            raise usb_error(errno.ENODEV) from None
        return len(payload)

    def intr_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        link = self._hid_link(dev_handle, ep, EP_IN)
        try:
            report = link.read(timeout / 1000 if timeout else None)
        except Gone:
            raise usb_error(errno.ENODEV) from None
        if report is None:
            raise usb_error(errno.ETIMEDOUT)
        if len(buff) * buff.itemsize < len(report):
            raise usb_error(errno.EOVERFLOW)  # the packet did not fit: it is lost
        memoryview(buff).cast("B")[: len(report)] = report
        return len(report)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        port = self._alive(dev_handle)
        reply = self._control(port, bmRequestType, bRequest, wValue, wIndex, bytes(data))
        if bmRequestType & 0x80 == 0:  # OUT: the data stage was taken
            return len(data)
        n = min(len(reply), len(data) * data.itemsize)
        memoryview(data).cast("B")[:n] = reply[:n]
        return n

    def _control(
        self, port: Port, request_type: int, request: int, value: int, index: int, out: bytes
    ) -> bytes:
        kind, recipient = request_type >> 5 & 3, request_type & 0x1F
        if kind == 0 and request == 6 and recipient == 0:  # GET_DESCRIPTOR (device)
            dtype, dindex = value >> 8, value & 0xFF
            if dtype == 1:
                return DEVICE_DESCRIPTOR
            if dtype == 2 and dindex == 0:
                return CONFIG_DESCRIPTOR
            if dtype == 3:
                if dindex == 0:
                    return bytes((4, 3)) + LANGID_EN_US.to_bytes(2, "little")
                text = port.serial if dindex == 3 else STRINGS.get(dindex)
                if text is not None:
                    return _string_descriptor(text)
        elif kind == 0 and request == 6 and recipient == 1 and index == HID_INTERFACE:
            if value >> 8 == 0x22:  # GET_DESCRIPTOR (HID report)
                return REPORT_DESCRIPTOR
            if value >> 8 == 0x21:
                return _HID_CLASS_DESCRIPTOR
        elif kind == 0 and request == 0:  # GET_STATUS
            return bytes(2)
        elif kind == 0 and request == 8 and recipient == 0:  # GET_CONFIGURATION
            return bytes((port.configuration,))
        elif kind == 1 and recipient == 1 and index == HID_INTERFACE:
            if request == 0x0A:  # SET_IDLE
                return b""
            if request == 0x02:  # GET_IDLE
                return bytes(1)
        raise usb_error(errno.EPIPE)  # the keypad stalls what it does not answer


def registry_backend() -> SimulatedUsbBackend:
    """A backend on the ``ratepad.sim`` registry's bus (``usb://ID?backend=sim``)."""
    return SimulatedUsbBackend()
