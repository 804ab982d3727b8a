"""``hid://[SERIAL][?api=NAME]``: a keypad's vendor HID interface through hidapi.

The keypad is a composite USB device (``VID``:``PID``, product "ratepad keypad", serial = the
keypad's serial): a CDC interface (MicroPython's REPL) and a vendor-defined HID interface (usage
page 0xFF00, no report ids) whose 64-byte interrupt IN and OUT reports carry the byte stream.
No driver to install: every OS gives such an interface to user programs (on Linux, through
``/dev/hidrawN``, which needs the udev rule ``packaging/70-ratepad.rules``).

hidapi (``pip install 'ratepad[hid]'``) is imported on first use, never by ``import ratepad``.
On Linux the hidapi wheel has two modules with one API: ``hidraw`` (the kernel's hidraw nodes,
used by default) and ``hid`` (libusb, which detaches the kernel driver). ``?api=NAME`` picks a
backend by name from ``backends.HID_APIS`` (those two, and whatever else is registered there);
``backend=`` gives one directly (anything with hidapi's ``enumerate`` and ``device``):
``ratepad.open("hid://RP-1", backend=api)``.

``hid://`` without a serial opens the only keypad plugged in; a reconnect goes back to the
keypad first opened.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import sys
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ..errors import (
    DeviceBusyError,
    DeviceNotFoundError,
    DevicePermissionError,
    DisconnectedError,
    LocalProtocolError,
    TransportError,
)
from .backends import HID_APIS
from .base import REPORT_SIZE, DeviceInfo, Transport, to_reports
from .usbid import PID, PRODUCT, USAGE_PAGE, VID

__all__ = [
    "PID",
    "PRODUCT",
    "USAGE_PAGE",
    "VID",
    "HidApi",
    "HidDevice",
    "HidTransport",
    "hid_api",
    "keypad_device_nodes",
]

REPORT_ID = 0  # the keypad has no report ids: hidapi wants a 0 before each OUT report

UDEV_HINT = "install the udev rule: see `ratepad doctor`"


class HidDevice(Protocol):
    """What ratepad uses of ``hid.device``."""

    def open_path(self, path: bytes) -> None: ...

    def write(self, buff: bytes) -> int: ...

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]: ...

    def close(self) -> None: ...


class HidApi(Protocol):
    """What ratepad uses of the ``hid`` module."""

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]: ...

    def device(self) -> HidDevice: ...


def _import_hidapi(name: str) -> HidApi:
    try:
        api: HidApi | None = HID_APIS.load(name)
    except ImportError as exc:
        raise TransportError(f"hid:// needs hidapi ({exc}): pip install 'ratepad[hid]'") from exc
    if api is None:
        raise TransportError(f"hid://?api={name}: not available here")
    return api


def hid_api() -> HidApi:
    """hidapi itself: module ``hidraw`` on Linux if present, else ``hid``."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(TransportError):
            return _import_hidapi("hidraw")
    return _import_hidapi("hid")


def _is_keypad_interface(entry: dict[str, Any]) -> bool:
    # usage page 0: unknown (hidapi's libusb backend could not read the report descriptor,
    # e.g. for lack of permission): keep it, opening it says what is wrong
    page = int(entry.get("usage_page") or 0)
    return page >= USAGE_PAGE or page == 0


def _device_node(path: bytes) -> str | None:
    """The device file behind a hidapi path: /dev/hidrawN (hidraw backend) or
    /dev/bus/usb/BBB/DDD (libusb backend paths are bus:address:interface in hex)."""
    text = path.decode(errors="replace")
    if text.startswith("/dev/"):
        return text
    m = re.fullmatch(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4}):([0-9a-fA-F]{2})", text)
    if m:
        return f"/dev/bus/usb/{int(m[1], 16):03d}/{int(m[2], 16):03d}"
    return None


_ERRNO_WORDS = {
    errno.EACCES: ("permission denied", "access denied", "libusb_error_access"),
    errno.EBUSY: ("resource busy", "libusb_error_busy"),
    errno.ENOENT: ("no such file", "no such device", "libusb_error_no_device"),
}


def _errno_of(exc: OSError, detail: str) -> int | None:
    if exc.errno:
        return exc.errno
    text = detail.lower()
    for code, words in _ERRNO_WORDS.items():
        if any(w in text for w in words):
            return code
    return None


def _detail(dev: Any) -> str:
    # hidapi >= 0.14 tells why in error() (the hidraw backend; the libusb one says little)
    try:
        text = str(dev.error())
    except Exception:
        return ""
    return "" if "not implemented" in text or text == "Success" else text


def keypad_device_nodes(backend: HidApi | None = None) -> list[str]:
    """The device files of the keypads plugged in (/dev/hidrawN, or /dev/bus/usb/BBB/DDD with
    hidapi's libusb backend): what needs the udev rule (``ratepad doctor``)."""
    nodes = set()
    for e in (backend or hid_api()).enumerate(VID, PID):
        node = _device_node(bytes(e.get("path") or b""))
        if node and _is_keypad_interface(e):
            nodes.add(node)
    return sorted(nodes)


class HidTransport(Transport):
    scheme = "hid"
    takes_backend = True

    def __init__(self, url: str, backend: HidApi | None = None) -> None:
        super().__init__(url)
        self.serial = self.parts.netloc or self.parts.path.strip("/")
        options = dict(parse_qsl(self.parts.query))
        self._api_name = options.pop("api", "")
        if options:
            raise LocalProtocolError(f"{url!r}: unknown option(s) {', '.join(options)} (api=)")
        known = HID_APIS.names()
        if self._api_name and self._api_name not in known:
            raise LocalProtocolError(
                f"{url!r}: unknown api {self._api_name!r} ({', '.join(known)})"
            )
        self._api_given = backend
        self._pinned = ""  # serial of the keypad first opened: reconnects go back to it
        self._dev: Any = None
        self.path = b""

    # -- opening ----------------------------------------------------------------------------
    def api(self) -> HidApi:
        if self._api_given is not None:
            return self._api_given
        if self._api_name:
            return _import_hidapi(self._api_name)
        return hid_api()

    def _choose(self, api: HidApi) -> dict[str, Any]:
        try:
            found = [e for e in api.enumerate(VID, PID) if _is_keypad_interface(e)]
        except OSError as exc:
            raise TransportError(f"{self.url}: HID enumeration failed: {exc}") from None
        want = self._pinned or self.serial
        if want:
            matches = [e for e in found if str(e.get("serial_number") or "") == want]
            if matches:
                return matches[0]
            seen = sorted(str(e.get("serial_number") or "?") for e in found)
            hint = f" (keypads seen: {', '.join(seen)})" if seen else ""
            if any(not e.get("serial_number") for e in found):
                hint += "; unreadable serial numbers: check permissions with `ratepad doctor`"
            raise DeviceNotFoundError(f"{self.url}: no keypad {want!r} found{hint}")
        if not found:
            raise DeviceNotFoundError(
                f"{self.url}: no ratepad keypad found (USB {VID:04x}:{PID:04x}); "
                "is it plugged in? `ratepad doctor` checks the setup"
            )
        if len(found) > 1:
            serials = ", ".join(sorted(str(e.get("serial_number") or "?") for e in found))
            raise DeviceNotFoundError(
                f"{self.url}: {len(found)} keypads found ({serials}): say which, "
                f"e.g. hid://{found[0].get('serial_number') or 'SERIAL'}"
            )
        return found[0]

    def open(self) -> None:
        if self._dev is not None:
            return
        api = self.api()
        entry = self._choose(api)
        path = bytes(entry["path"])
        dev = api.device()
        try:
            dev.open_path(path)
        except OSError as exc:
            raise self._open_error(path, exc, _detail(dev)) from None
        self._dev = dev
        self.path = path
        self._pinned = str(entry.get("serial_number") or "") or self._pinned

    def _open_error(self, path: bytes, exc: OSError, detail: str) -> TransportError:
        code = _errno_of(exc, detail)
        node = _device_node(path)
        where = node or path.decode(errors="replace")
        if (
            code is None
            and node
            and os.path.exists(node)
            and not os.access(node, os.R_OK | os.W_OK)
        ):
            code = errno.EACCES
        if code in (errno.EACCES, errno.EPERM):
            return DevicePermissionError(f"{self.url}: permission denied on {where}: {UDEV_HINT}")
        if code == errno.EBUSY:
            return DeviceBusyError(f"{self.url}: {where} is in use by another program")
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return DeviceNotFoundError(f"{self.url}: the keypad went away ({where})")
        return TransportError(
            f"{self.url}: cannot open {where}: {detail or exc} (see `ratepad doctor`)"
        )

    # -- i/o --------------------------------------------------------------------------------
    def _device(self) -> Any:
        if self._dev is None:
            raise DisconnectedError(f"{self.url} is not open")
        return self._dev

    def write(self, data: bytes) -> None:
        dev = self._device()
        for report in to_reports(data):
            try:
                n = dev.write(bytes((REPORT_ID,)) + report)
            except (OSError, ValueError) as exc:
                raise DisconnectedError(f"{self.url}: write failed: {exc}") from None
            if n < 0:
                why = _detail(dev) or "the keypad went away?"
                raise DisconnectedError(f"{self.url}: write failed: {why}")

    def read(self, timeout: float) -> bytes:
        dev = self._device()
        # hidapi reads without a timeout when given 0: ask for at least 1 ms
        ms = max(1, math.ceil(timeout * 1000))
        try:
            data = dev.read(REPORT_SIZE, ms)
        except (OSError, ValueError) as exc:
            why = _detail(dev) or str(exc)
            raise DisconnectedError(f"{self.url}: {why}") from None
        return bytes(data)

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            with contextlib.suppress(Exception):
                dev.close()

    # -- discovery --------------------------------------------------------------------------
    @classmethod
    def discover(cls, backend: HidApi | None = None) -> list[DeviceInfo]:
        out = []
        for e in (backend or hid_api()).enumerate(VID, PID):
            if not _is_keypad_interface(e):
                continue
            serial = str(e.get("serial_number") or "")
            path = bytes(e.get("path") or b"").decode(errors="replace")
            product = e.get("product_string") or PRODUCT
            out.append(DeviceInfo(f"hid://{serial}", serial, f"{product} ({path})"))
        return out
