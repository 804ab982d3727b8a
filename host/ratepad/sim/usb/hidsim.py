"""Simulated USB keypads behind the ``hid://`` and ``usb://`` transports, without hardware.

``SimulatedBus`` is a USB bus with simulated keypads plugged in (``ratepad.sim.RealtimeKeypad``:
the real firmware core on the wall clock). It keeps what the operating system knows of each
keypad: its serial string (read at plug time, as the USB serial is fixed at boot), bus address
and hidraw node, which kernel drivers are bound to its interfaces (``cdc_acm`` on 0 and 1,
``usbhid`` on 2), which host handle holds its HID link, and whether it is plugged in at all.
``unplug(serial)`` and ``replug(serial)`` pull and reinsert the cable; a replugged keypad gets a
new address and hidraw node, boots again (it is bus powered) and handles opened before are dead
for good, as on a real bus.

``SimulatedHidApi`` is hidapi's ``hid`` module (``enumerate``, ``device``) over such a bus: a
backend of ``hid://``, given as ``ratepad.open("hid://ID", backend=SimulatedHidApi(...))`` or
named ``hid://ID?api=sim`` for the ``ratepad.sim`` registry's keypads (``registry_api``). It
behaves like hidapi's Linux hidraw backend (paths ``/dev/hidrawN``, a leading report id 0 on
writes, ``OSError('open failed')`` / ``OSError('read error')`` / ``write() == -1`` with the
reason in ``error()``), except that a keypad's HID link is held by one handle at a time (a
second open fails as busy, as with hidapi's libusb backend).
``ratepad.sim.usb.usbsim.SimulatedUsbBackend`` is a pyusb backend over a bus; one bus may serve
both, and then they contend for the same keypads as on a real host.

The HID link of a keypad comes up when a host handle takes it (opens the hidraw node, claims the
interface) and goes down when it lets go or the cable is pulled: ``RealtimeKeypad.connect()`` /
``disconnect()``, the firmware's view of the USB host starting and stopping to poll it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...transports.usbid import PID, PRODUCT, USAGE_PAGE, VID
from .. import RealtimeKeypad

__all__ = [
    "Gone",
    "Link",
    "Port",
    "Refused",
    "SimulatedBus",
    "SimulatedHidApi",
    "registry_api",
    "registry_bus",
]

MANUFACTURER = "ratepad"
HID_INTERFACE = 2
CDC_INTERFACES = (0, 1)
RELEASE = 0x0100  # bcdDevice
REPORT_SIZE = 64
_POLL = 0.05  # s: how often a waiting reader looks at the cable


class Gone(Exception):
    """The keypad was unplugged (or re-enumerated) under an open handle."""


class Refused(Exception):
    """The operating system refuses to open the keypad: ``errno`` says why."""

    def __init__(self, err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.errno = err


def keypad_serial(keypad: RealtimeKeypad) -> str:
    """The serial a keypad reports over USB (its ``serial`` setting, else its simulator id)."""
    core = keypad.keypad.core
    if core is not None:
        value = core.settings.get("serial")
        if value:
            return str(value)
    return keypad.keypad.device_id


@dataclass(eq=False)
class Port:
    """One hub port with a keypad on it (plugged in or not)."""

    keypad: RealtimeKeypad
    serial: str
    number: int
    address: int = 0
    hidraw: int = 0
    generation: int = 0  # bumped at every plug: handles of an older generation are dead
    plugged: bool = False
    refuse: int = 0  # errno every open fails with (EACCES, EBUSY); 0: none
    configuration: int = 1  # bConfigurationValue the OS selected at plug time
    kernel_drivers: set[int] = field(default_factory=set)
    claims: dict[int, object] = field(default_factory=dict)  # interface -> handle (pyusb)
    holder: object | None = None  # the handle whose HID link is up

    @property
    def hidraw_path(self) -> bytes:
        return f"/dev/hidraw{self.hidraw}".encode()

    @property
    def hid_visible(self) -> bool:
        """The hidraw node exists: plugged in with usbhid bound to the HID interface."""
        return self.plugged and HID_INTERFACE in self.kernel_drivers


class Link:
    """One host handle's HID link to a keypad: 64-byte reports both ways."""

    def __init__(self, port: Port, holder: object) -> None:
        self.port = port
        self.holder = holder
        self.generation = port.generation
        self._pending = bytearray()  # whole 64-byte IN reports read from the keypad, not handed out

    @property
    def alive(self) -> bool:
        return self.port.plugged and self.port.generation == self.generation

    def check(self) -> None:
        if not self.alive:
            raise Gone(self.port.serial)

    def write(self, data: bytes) -> None:
        """The payload of OUT reports: stream bytes, zero padding included (harmless)."""
        self.check()
        self.port.keypad.write(bytes(data))

    def read(self, timeout: float | None) -> bytes | None:
        """The next 64-byte IN report; None after ``timeout`` seconds (None: wait for ever)."""
        end = None if timeout is None else time.monotonic() + timeout
        first = True
        while True:
            self.check()
            if len(self._pending) >= REPORT_SIZE:
                report = bytes(self._pending[:REPORT_SIZE])
                del self._pending[:REPORT_SIZE]
                return report
            now = time.monotonic()
            if end is not None and now >= end and not first:
                return None
            first = False
            left = _POLL if end is None else max(0.0, min(_POLL, end - now))
            self._pending += self.port.keypad.read(left)


class SimulatedBus:
    """A USB bus with simulated keypads on it.

    ``keypads``: the keypads plugged in now (more with ``plug``); None: every keypad of the
    ``ratepad.sim`` registry (``ratepad.sim.get(ID)`` plugs one in, ``ratepad.sim.reset()``
    unplugs them all).
    """

    def __init__(self, keypads: Iterable[RealtimeKeypad] | None = None, number: int = 1) -> None:
        self.number = number
        self._lock = threading.RLock()
        self._registry = keypads is None
        self._ports: list[Port] = []
        self._next_address = 2  # 1 is the root hub
        self._next_hidraw = 0
        for kp in keypads or ():
            self.plug(kp)

    # -- the cable --------------------------------------------------------------------------
    def plug(self, keypad: RealtimeKeypad) -> Port:
        """Plug a keypad into a free port; it enumerates at once."""
        with self._lock:
            port = Port(keypad, keypad_serial(keypad), len(self._ports) + 1)
            self._ports.append(port)
            self._enumerate(port)
            return port

    def _enumerate(self, port: Port) -> None:
        port.serial = keypad_serial(port.keypad)
        port.address = self._next_address
        self._next_address = self._next_address + 1 if self._next_address < 127 else 2
        port.hidraw = self._next_hidraw
        self._next_hidraw += 1
        port.generation += 1
        port.configuration = 1
        port.kernel_drivers = {*CDC_INTERFACES, HID_INTERFACE}
        port.claims.clear()
        port.holder = None
        port.plugged = True

    def unplug(self, serial: str) -> None:
        """Pull the cable: open handles fail from now on (ENODEV, read error)."""
        with self._lock:
            self._unplug(self.port(serial))

    def _unplug(self, port: Port) -> None:
        if not port.plugged:
            return
        port.plugged = False
        port.claims.clear()
        if port.holder is not None:
            port.holder = None
            port.keypad.disconnect()

    def replug(self, serial: str, reboot: bool = True) -> None:
        """Plug the cable back in: a new address and hidraw node; ``reboot``: the keypad boots
        again (it is bus powered), from what its flash kept."""
        with self._lock:
            port = self.port(serial)
            self._unplug(port)
            if reboot:
                port.keypad.power_cycle()
            self._enumerate(port)

    def refuse(self, serial: str, err: int) -> None:
        """Make every open of ``serial`` fail with ``err`` (errno.EACCES: no udev rule;
        errno.EBUSY: another program has it); 0 lets opens through again."""
        with self._lock:
            self.port(serial).refuse = err

    # -- what the host sees ---------------------------------------------------------------
    def ports(self) -> list[Port]:
        """Every port with a keypad, plugged in or not."""
        with self._lock:
            if self._registry:
                self._sync_registry()
            return list(self._ports)

    def plugged(self) -> list[Port]:
        return [p for p in self.ports() if p.plugged]

    def port(self, serial: str) -> Port:
        with self._lock:
            for p in self.ports():
                if p.serial == serial:
                    return p
            raise LookupError(f"no simulated keypad {serial!r} on this bus")

    def _sync_registry(self) -> None:
        from ... import sim

        current = list(sim.devices().values())  # without creating keypads (sim.get would)
        for p in self._ports:
            if not any(p.keypad is kp for kp in current):
                self._unplug(p)  # removed from the registry: gone from the bus
        self._ports = [p for p in self._ports if any(p.keypad is kp for kp in current)]
        for kp in current:
            if not any(p.keypad is kp for p in self._ports):
                self.plug(kp)

    # -- the HID link ---------------------------------------------------------------------
    def take_link(self, port: Port, holder: object) -> Link:
        """Bring ``port``'s HID link up for ``holder`` (Gone, or Refused(EBUSY) if taken)."""
        with self._lock:
            if not port.plugged:
                raise Gone(port.serial)
            if port.holder is not None and port.holder is not holder:
                raise Refused(errno.EBUSY)
            link = Link(port, holder)
            port.holder = holder
            port.keypad.connect()
            return link

    def drop_link(self, link: Link) -> None:
        with self._lock:
            port = link.port
            if link.alive and port.holder is link.holder:
                port.holder = None
                port.keypad.disconnect()


_REGISTRY_BUS: SimulatedBus | None = None
_REGISTRY_LOCK = threading.Lock()


def registry_bus() -> SimulatedBus:
    """The process-wide bus of the ``ratepad.sim`` registry's keypads (``?api=sim``,
    ``?backend=sim``)."""
    global _REGISTRY_BUS
    with _REGISTRY_LOCK:
        if _REGISTRY_BUS is None:
            _REGISTRY_BUS = SimulatedBus()
        return _REGISTRY_BUS


# -- hidapi ---------------------------------------------------------------------------------------
class SimulatedHidApi:
    """hidapi's ``hid`` module API over simulated keypads: ``keypads``, or an existing ``bus``;
    neither: the ``ratepad.sim`` registry's keypads (``registry_bus()``)."""

    def __init__(
        self, keypads: Iterable[RealtimeKeypad] | None = None, *, bus: SimulatedBus | None = None
    ) -> None:
        if bus is None:
            bus = registry_bus() if keypads is None else SimulatedBus(keypads)
        self.bus = bus

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        if vendor_id not in (0, VID) or product_id not in (0, PID):
            return []
        return [
            {
                "path": p.hidraw_path,
                "vendor_id": VID,
                "product_id": PID,
                "serial_number": p.serial,
                "release_number": RELEASE,
                "manufacturer_string": MANUFACTURER,
                "product_string": PRODUCT,
                "usage_page": USAGE_PAGE,
                "usage": 1,
                "interface_number": HID_INTERFACE,
            }
            for p in self.bus.plugged()
            if p.hid_visible
        ]

    def device(self) -> SimulatedHidDevice:
        return SimulatedHidDevice(self.bus)

    def unplug(self, serial: str) -> None:
        self.bus.unplug(serial)

    def replug(self, serial: str, reboot: bool = True) -> None:
        self.bus.replug(serial, reboot)


class SimulatedHidDevice:
    """``hid.device`` over a simulated bus."""

    def __init__(self, bus: SimulatedBus) -> None:
        self._bus = bus
        self._link: Link | None = None
        self._error = ""
        self._nonblocking = False

    def _open_port(self, port: Port | None, what: str) -> None:
        if self._link is not None:
            self.close()
        try:
            if port is None or not port.hid_visible:
                raise Refused(errno.ENOENT)
            if port.refuse:
                raise Refused(port.refuse)
            self._link = self._bus.take_link(port, self)
        except (Refused, Gone) as exc:
            err = exc.errno if isinstance(exc, Refused) else errno.ENOENT
            self._error = f"Failed to open a device with path '{what}': {os.strerror(err)}"
            raise OSError("open failed") from None
        self._error = ""

    def open_path(self, path: bytes) -> None:
        port = next((p for p in self._bus.plugged() if p.hidraw_path == bytes(path)), None)
        self._open_port(port, bytes(path).decode(errors="replace"))

    def open(
        self, vendor_id: int = 0, product_id: int = 0, serial_number: str | None = None
    ) -> None:
        ports = [
            p
            for p in self._bus.plugged()
            if p.hid_visible
            and vendor_id in (0, VID)
            and product_id in (0, PID)
            and serial_number in (None, p.serial)
        ]
        self._open_port(ports[0] if ports else None, f"{vendor_id:04x}:{product_id:04x}")

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._bus.drop_link(link)

    def __del__(self) -> None:  # hidapi's device closes itself when garbage collected
        with contextlib.suppress(Exception):
            self.close()

    def _opened(self) -> Link:
        if self._link is None:
            raise ValueError("not open")
        return self._link

    def write(self, buff: Any) -> int:
        link = self._opened()
        data = bytes(buff)
        if not data or data[0] != 0 or len(data) > REPORT_SIZE + 1:
            self._error = "hid_write: the keypad has no report ids: report id 0 plus 64 bytes"
            return -1
        try:
            link.write(data[1:])
        except Gone:
            self._error = f"hid_write: {os.strerror(errno.ENODEV)}"
            return -1
        return len(data)

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        link = self._opened()
        if timeout_ms > 0:
            timeout: float | None = timeout_ms / 1000
        else:
            timeout = 0.0 if self._nonblocking else None
        try:
            report = link.read(timeout)
        except Gone:
            self._error = "hid_read_timeout: unexpected poll error (device disconnected)"
            raise OSError("read error") from None
        return [] if report is None else list(report[:max_length])

    def set_nonblocking(self, v: int) -> int:
        self._opened()
        self._nonblocking = bool(v)
        return 0

    def error(self) -> str:
        return self._error or "Success"

    def get_serial_number_string(self) -> str:
        return self._opened().port.serial

    def get_product_string(self) -> str:
        self._opened()
        return PRODUCT

    def get_manufacturer_string(self) -> str:
        self._opened()
        return MANUFACTURER


def registry_api() -> SimulatedHidApi:
    """hidapi over the ``ratepad.sim`` registry's keypads (``hid://ID?api=sim``)."""
    return SimulatedHidApi(bus=registry_bus())
