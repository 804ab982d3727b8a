"""``usb://[SERIAL][?backend=NAME]``: the keypad's HID interface driven
directly with pyusb (libusb), bypassing the OS HID stack.

For hosts where hidapi is unavailable or the HID stack is in the way. The interface is found by
its class (HID) and its interrupt IN/OUT endpoints; on Linux the kernel's ``usbhid`` driver is
detached while ratepad holds the interface and attached again on close. Needs pyusb
(``pip install 'ratepad[usb]'``, imported on first use, never by ``import ratepad``) and the
libusb-1.0 library; on Linux the udev rule ``packaging/70-ratepad.rules`` gives access.

Without a backend pyusb picks libusb1, openusb or libusb0. ``?backend=NAME`` picks one by name
from ``backends.USB_BACKENDS`` (those three, and whatever else is registered there);
``backend=`` gives a pyusb backend object directly: ``ratepad.open("usb://RP-1", backend=b)``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import math
from typing import Any
from urllib.parse import parse_qsl

from ..errors import (
    DeviceBusyError,
    DeviceNotFoundError,
    DevicePermissionError,
    DisconnectedError,
    LocalProtocolError,
    TransportError,
)
from .backends import USB_BACKENDS
from .base import REPORT_SIZE, DeviceInfo, Transport, to_reports
from .hid import PID, UDEV_HINT, VID

__all__ = ["PID", "VID", "UsbTransport"]

HID_CLASS = 0x03
WRITE_TIMEOUT_MS = 1000
NO_LIBUSB = (
    "pyusb finds no libusb backend: install libusb-1.0 (Debian/Ubuntu: apt install "
    "libusb-1.0-0; macOS: brew install libusb) or use hid://"
)


def _pyusb() -> tuple[Any, Any]:
    try:
        core = importlib.import_module("usb.core")
        util = importlib.import_module("usb.util")
    except ImportError as exc:
        raise TransportError(f"usb:// needs pyusb ({exc}): pip install 'ratepad[usb]'") from exc
    return core, util


def _backend_by_name(name: str) -> Any:
    _pyusb()
    backend = USB_BACKENDS.load(name)
    if backend is None:
        raise TransportError(f"usb://?backend={name}: the {name} library is not available")
    return backend


def _read_serial(dev: Any) -> str:
    """The serial string (opens the device: raises USBError without permission)."""
    _, util = _pyusb()
    if not dev.iSerialNumber:
        return ""
    langids = dev.ctrl_transfer(0x80, 0x06, 0x0300, 0, 254)  # string descriptor 0
    langid = langids[2] | langids[3] << 8 if len(langids) >= 4 else 0x0409
    return str(util.get_string(dev, dev.iSerialNumber, langid) or "")


def _node(dev: Any) -> str:
    bus, address = getattr(dev, "bus", None), getattr(dev, "address", None)
    if bus is None or address is None:
        return "the keypad's USB device"
    return f"/dev/bus/usb/{bus:03d}/{address:03d}"


class UsbTransport(Transport):
    scheme = "usb"
    takes_backend = True

    def __init__(self, url: str, backend: Any = None) -> None:
        super().__init__(url)
        self.serial = self.parts.netloc or self.parts.path.strip("/")
        options = dict(parse_qsl(self.parts.query))
        self._backend_name = options.pop("backend", "")
        if options:
            raise LocalProtocolError(f"{url!r}: unknown option(s) {', '.join(options)} (backend=)")
        known = USB_BACKENDS.names()
        if self._backend_name and self._backend_name not in known:
            raise LocalProtocolError(
                f"{url!r}: unknown backend {self._backend_name!r} ({', '.join(known)})"
            )
        self._backend_given = backend
        self._pinned = ""  # serial of the keypad first opened: reconnects go back to it
        self._dev: Any = None
        self._intf = 0
        self._ep_in = 0
        self._ep_out = 0
        self._detached = False

    def backend(self) -> Any:
        """The pyusb backend to use (None: pyusb's choice)."""
        if self._backend_given is not None:
            return self._backend_given
        if self._backend_name:
            return _backend_by_name(self._backend_name)
        return None

    # -- errors -----------------------------------------------------------------------------
    def _error(self, exc: Exception, dev: Any = None, opening: bool = False) -> TransportError:
        err = getattr(exc, "errno", None)
        what = getattr(exc, "strerror", None) or str(exc)
        if err in (errno.EACCES, errno.EPERM):
            return DevicePermissionError(
                f"{self.url}: permission denied on {_node(dev)}: {UDEV_HINT}"
            )
        if err == errno.EBUSY:
            return DeviceBusyError(
                f"{self.url}: the keypad's HID interface is in use by another program "
                f"(another ratepad connection, a hid:// one?): {what}"
            )
        if err in (errno.ENODEV, errno.ENOENT, errno.EIO, errno.ESHUTDOWN, errno.EPIPE):
            cls = DeviceNotFoundError if opening else DisconnectedError
            return cls(f"{self.url}: the keypad went away ({what})")
        return TransportError(f"{self.url}: USB error: {what}")

    # -- opening ----------------------------------------------------------------------------
    def _find(self) -> list[Any]:
        core, _ = _pyusb()
        try:
            return list(
                core.find(find_all=True, idVendor=VID, idProduct=PID, backend=self.backend())
            )
        except core.NoBackendError:
            raise TransportError(f"{self.url}: {NO_LIBUSB}") from None
        except core.USBError as exc:
            raise self._error(exc, opening=True) from None

    def _choose(self, devices: list[Any]) -> Any:
        core, util = _pyusb()
        want = self._pinned or self.serial
        if not devices:
            raise DeviceNotFoundError(
                f"{self.url}: no ratepad keypad found (USB {VID:04x}:{PID:04x}); "
                "is it plugged in? `ratepad doctor` checks the setup"
            )
        if not want:
            if len(devices) == 1:
                return devices[0]
            serials = []
            for dev in devices:
                try:
                    serials.append(_read_serial(dev) or "?")
                except (core.USBError, ValueError):
                    serials.append("?")
                finally:
                    util.dispose_resources(dev)
            raise DeviceNotFoundError(
                f"{self.url}: {len(devices)} keypads found ({', '.join(sorted(serials))}): "
                f"say which, e.g. usb://{serials[0]}"
            )
        seen: list[str] = []
        failure: TransportError | None = None
        for dev in devices:
            try:
                serial = _read_serial(dev)
            except (core.USBError, ValueError) as exc:
                failure = failure or self._error(exc, dev, opening=True)
                util.dispose_resources(dev)
                continue
            if serial == want:
                return dev
            seen.append(serial)
            util.dispose_resources(dev)
        if failure is not None:  # perhaps the one we want: say why it could not be read
            raise failure
        raise DeviceNotFoundError(
            f"{self.url}: no keypad {want!r} found (keypads seen: {', '.join(sorted(seen))})"
        )

    def open(self) -> None:
        if self._dev is not None:
            return
        core, util = _pyusb()
        dev = self._choose(self._find())
        try:
            try:
                cfg = dev.get_active_configuration()
            except core.USBError as exc:
                if exc.errno is not None:
                    raise
                dev.set_configuration()  # not configured yet (no OS did it)
                cfg = dev.get_active_configuration()
            intf = util.find_descriptor(cfg, bInterfaceClass=HID_CLASS)
            if intf is None:
                raise DeviceNotFoundError(
                    f"{self.url}: the keypad has no HID interface (maintenance mode?)"
                )
            ep_in = util.find_descriptor(intf, custom_match=_interrupt(util, util.ENDPOINT_IN))
            ep_out = util.find_descriptor(intf, custom_match=_interrupt(util, util.ENDPOINT_OUT))
            if ep_in is None or ep_out is None:
                raise DeviceNotFoundError(
                    f"{self.url}: the keypad's HID interface lacks interrupt endpoints"
                )
            n = intf.bInterfaceNumber
            detached = False
            with contextlib.suppress(NotImplementedError):  # only Linux has kernel drivers
                if dev.is_kernel_driver_active(n):
                    dev.detach_kernel_driver(n)
                    detached = True
            try:
                util.claim_interface(dev, n)
            except core.USBError:
                if detached:
                    with contextlib.suppress(core.USBError, NotImplementedError):
                        dev.attach_kernel_driver(n)
                raise
            serial = _read_serial(dev)
        except core.USBError as exc:
            with contextlib.suppress(core.USBError):
                util.dispose_resources(dev)
            raise self._error(exc, dev, opening=True) from None
        except TransportError:
            with contextlib.suppress(core.USBError):
                util.dispose_resources(dev)
            raise
        self._dev = dev
        self._intf = n
        self._ep_in = ep_in.bEndpointAddress
        self._ep_out = ep_out.bEndpointAddress
        self._detached = detached
        self._pinned = serial or self._pinned

    # -- i/o --------------------------------------------------------------------------------
    def _device(self) -> Any:
        if self._dev is None:
            raise DisconnectedError(f"{self.url} is not open")
        return self._dev

    def write(self, data: bytes) -> None:
        dev = self._device()
        core, _ = _pyusb()
        for report in to_reports(data):
            try:
                dev.write(self._ep_out, report, WRITE_TIMEOUT_MS)
            except core.USBTimeoutError:
                raise DisconnectedError(f"{self.url}: the keypad takes no data (timeout)") from None
            except core.USBError as exc:
                raise self._error(exc, dev) from None

    def read(self, timeout: float) -> bytes:
        dev = self._device()
        core, _ = _pyusb()
        ms = max(1, math.ceil(timeout * 1000))  # libusb waits for ever when given 0
        try:
            data = dev.read(self._ep_in, REPORT_SIZE, ms)
        except core.USBTimeoutError:
            return b""
        except core.USBError as exc:
            if exc.errno == errno.ETIMEDOUT:
                return b""
            raise self._error(exc, dev) from None
        return bytes(data)

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        core, util = _pyusb()
        with contextlib.suppress(core.USBError):
            util.release_interface(dev, self._intf)
        if self._detached:  # give the interface back to the OS (hid:// works again)
            with contextlib.suppress(core.USBError, NotImplementedError):
                dev.attach_kernel_driver(self._intf)
        with contextlib.suppress(core.USBError):
            util.dispose_resources(dev)

    # -- discovery --------------------------------------------------------------------------
    @classmethod
    def discover(cls, backend: Any = None) -> list[DeviceInfo]:
        core, util = _pyusb()
        out = []
        try:
            devices = list(core.find(find_all=True, idVendor=VID, idProduct=PID, backend=backend))
        except core.NoBackendError:
            raise TransportError(NO_LIBUSB) from None
        for dev in devices:
            note = ""
            try:
                serial = _read_serial(dev)
            except (core.USBError, ValueError) as exc:
                serial = ""
                note = f"; serial unreadable: {getattr(exc, 'strerror', None) or exc}"
            finally:
                with contextlib.suppress(core.USBError):
                    util.dispose_resources(dev)
            where = f"USB bus {dev.bus} address {dev.address}"
            out.append(DeviceInfo(f"usb://{serial}", serial, f"ratepad keypad ({where}{note})"))
        return out


def _interrupt(util: Any, direction: int) -> Any:
    def match(ep: Any) -> bool:
        return bool(
            util.endpoint_direction(ep.bEndpointAddress) == direction
            and util.endpoint_type(ep.bmAttributes) == util.ENDPOINT_TYPE_INTR
        )

    return match
