"""What is particular to ``usb://`` (pyusb) and ``hid://`` (hidapi): finding the keypad, the
errors users meet (no keypad, no permission, busy, no libusb, no hidapi), the report framing
each library wants, and the simulated backends themselves (descriptors, kernel drivers, the
cable). The protocol over them is tested once for all transports in test_back2back.py."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ratepad
from ratepad.sim.usb.hidsim import SimulatedBus, SimulatedHidApi
from ratepad.transports import hid as hid_transport
from ratepad.transports.hid import HidTransport
from ratepad.transports.usb import UsbTransport

FAST = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
SCHEMES = ["usb", "hid"]


@pytest.fixture(autouse=True)
def fresh_keypads() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


@pytest.fixture
def bus() -> SimulatedBus:
    """One simulated bus behind both usb:// and hid://, keypad RP-0001 plugged in."""
    pytest.importorskip("usb.core")
    return SimulatedBus([ratepad.sim.get("RP-0001", FAST)])


def backend(scheme: str, bus: SimulatedBus) -> Any:
    """The simulated backend of ``scheme`` on ``bus``: hidapi's API or a pyusb backend."""
    if scheme == "hid":
        return SimulatedHidApi(bus=bus)
    from ratepad.sim.usb.usbsim import SimulatedUsbBackend

    return SimulatedUsbBackend(bus=bus)


def connect(scheme: str, bus: SimulatedBus, serial: str = "RP-0001") -> ratepad.Keypad:
    return ratepad.open(f"{scheme}://{serial}", backend=backend(scheme, bus))


def transport(
    scheme: str, bus: SimulatedBus, serial: str = "RP-0001"
) -> HidTransport | UsbTransport:
    cls = HidTransport if scheme == "hid" else UsbTransport
    return cls(f"{scheme}://{serial}", backend=backend(scheme, bus))


# -- finding the keypad ---------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_keypad_is_device_not_found(scheme: str) -> None:
    pytest.importorskip("usb.core")
    empty = SimulatedBus([])
    with pytest.raises(ratepad.DeviceNotFoundError, match="no ratepad keypad found"):
        connect(scheme, empty, "")
    empty.plug(ratepad.sim.get("RP-0002", FAST))
    with pytest.raises(ratepad.DeviceNotFoundError, match=r"no keypad 'RP-0001'.*RP-0002"):
        connect(scheme, empty, "RP-0001")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_several_keypads_need_a_serial(bus: SimulatedBus, scheme: str) -> None:
    bus.plug(ratepad.sim.get("RP-0002", FAST))
    with pytest.raises(ratepad.DeviceNotFoundError, match="2 keypads found"):
        transport(scheme, bus, "").open()
    with connect(scheme, bus, "RP-0002") as kp:
        assert kp.info is not None and kp.info.serial == "RP-0002"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_discovery(bus: SimulatedBus, scheme: str) -> None:
    bus.plug(ratepad.sim.get("RP-0002", FAST))
    cls = HidTransport if scheme == "hid" else UsbTransport
    found = sorted(cls.discover(backend(scheme, bus)), key=lambda d: d.serial)
    assert [(d.url, d.serial) for d in found] == [
        (f"{scheme}://RP-0001", "RP-0001"),
        (f"{scheme}://RP-0002", "RP-0002"),
    ]
    assert all("ratepad keypad" in d.description for d in found)
    bus.unplug("RP-0002")
    assert [d.serial for d in cls.discover(backend(scheme, bus))] == ["RP-0001"]


# -- errors users meet ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("url_serial", ["RP-0001", ""])
def test_permission_denied_points_at_the_udev_rule(
    bus: SimulatedBus, scheme: str, url_serial: str
) -> None:
    bus.refuse("RP-0001", errno.EACCES)
    with pytest.raises(ratepad.DevicePermissionError) as info:
        connect(scheme, bus, url_serial)
    message = str(info.value)
    assert "udev rule" in message and "ratepad doctor" in message
    port = bus.port("RP-0001")
    node = (
        f"/dev/hidraw{port.hidraw}" if scheme == "hid" else f"/dev/bus/usb/001/{port.address:03d}"
    )
    assert f"permission denied on {node}" in message
    assert isinstance(info.value, PermissionError)  # a builtin PermissionError too
    bus.refuse("RP-0001", 0)  # the rule is installed: it opens
    with connect(scheme, bus, url_serial) as kp:
        assert kp.info is not None


@pytest.mark.parametrize("scheme", SCHEMES)
def test_busy_when_another_program_holds_the_keypad(bus: SimulatedBus, scheme: str) -> None:
    with connect(scheme, bus, "RP-0001"), pytest.raises(ratepad.DeviceBusyError):
        transport(scheme, bus).open()
    with connect(scheme, bus, "RP-0001") as kp:  # let go: free again
        assert kp.info is not None
    bus.refuse("RP-0001", errno.EBUSY)
    with pytest.raises(ratepad.DeviceBusyError):
        transport(scheme, bus).open()


def test_usb_and_hid_contend_for_the_keypad(bus: SimulatedBus) -> None:
    with connect("hid", bus), pytest.raises(ratepad.DeviceBusyError):
        transport("usb", bus).open()
    with connect("usb", bus):
        # pyusb detached usbhid: no hidraw node while usb:// holds the interface
        assert HidTransport.discover(backend("hid", bus)) == []
        assert 2 not in bus.port("RP-0001").kernel_drivers
    assert 2 in bus.port("RP-0001").kernel_drivers  # attached again on close
    assert [d.serial for d in HidTransport.discover(backend("hid", bus))] == ["RP-0001"]


def test_usb_without_libusb_says_install_libusb(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("usb.core")
    import usb.backend.libusb0
    import usb.backend.libusb1
    import usb.backend.openusb

    for module in (usb.backend.libusb1, usb.backend.libusb0, usb.backend.openusb):
        monkeypatch.setattr(module, "get_backend", lambda *a, **k: None)
    with pytest.raises(ratepad.TransportError, match=r"libusb.*apt install libusb-1.0-0") as info:
        ratepad.open("usb://")
    assert type(info.value) is ratepad.TransportError
    with pytest.raises(ratepad.TransportError, match="libusb"):
        UsbTransport.discover()
    assert [d for d in ratepad.find(["usb"])] == []  # discovery skips what is unavailable


def test_import_ratepad_without_hidapi_or_pyusb() -> None:
    code = textwrap.dedent(
        """
        import sys

        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("hid", "hidraw", "usb"):
                    raise ImportError(f"No module named {name!r} (blocked)")
                return None

        sys.meta_path.insert(0, Blocked())
        import ratepad
        import ratepad.transports.hid, ratepad.transports.usb
        assert not {"hid", "hidraw", "usb"} & set(sys.modules), sorted(sys.modules)
        assert ratepad.find(["hid", "usb"]) == []
        for url, extra in (("hid://", "ratepad[hid]"), ("usb://", "ratepad[usb]")):
            try:
                ratepad.open(url)
            except ratepad.TransportError as exc:
                assert f"pip install '{extra}'" in str(exc), exc
            else:
                raise AssertionError(url)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_import_ratepad_imports_neither_library() -> None:
    code = (
        "import sys, ratepad, ratepad.transports.hid, ratepad.transports.usb; "
        "print(sorted({'hid', 'hidraw', 'usb'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_bad_urls() -> None:
    with pytest.raises(ratepad.LocalProtocolError, match="unknown option"):
        HidTransport("hid://X?speed=9")
    with pytest.raises(ratepad.LocalProtocolError, match="unknown api"):
        HidTransport("hid://X?api=winusb")
    with pytest.raises(ratepad.LocalProtocolError, match="unknown backend"):
        UsbTransport("usb://X?backend=winusb")
    with pytest.raises(ratepad.LocalProtocolError, match="sim:// takes no backend"):
        ratepad.open("sim://K1", backend=SimulatedHidApi([]))


def test_url_options_select_the_registry_simulation() -> None:
    pytest.importorskip("usb.core")
    ratepad.sim.get("RP-0009", FAST)
    for url in ("usb://RP-0009?backend=sim", "hid://RP-0009?api=sim"):
        with ratepad.open(url) as kp:
            assert kp.info is not None and kp.info.serial == "RP-0009"


def test_third_party_backends_register_by_entry_point(tmp_path: Path) -> None:
    """A backend is found by name through its entry-point group, as the simulated one is
    through the built-in table: ``hid.py`` itself names no implementation."""
    dist = tmp_path / "ratepad_fakehid-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ratepad-fakehid\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ratepad.hid_apis]\nfake = fakehid:api\n")
    (tmp_path / "fakehid.py").write_text(
        "def api():\n"
        "    from ratepad.sim.usb.hidsim import SimulatedHidApi\n"
        "    import ratepad.sim\n"
        "    return SimulatedHidApi([ratepad.sim.get('RP-0042')])\n"
    )
    code = textwrap.dedent(
        """
        import ratepad
        from ratepad.transports.backends import HID_APIS
        assert "fake" in HID_APIS.names(), HID_APIS.names()
        with ratepad.open("hid://RP-0042?api=fake") as kp:
            print(kp.info.serial)
        """
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0 and done.stdout.strip() == "RP-0042", done.stderr


# -- hidapi: the calls made ------------------------------------------------------------------------
class RecordingHid:
    """hidapi's module API, recording what HidTransport asks of it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.reads: list[tuple[int, int]] = []
        self.replies: list[list[int]] = [list(range(64))]
        self.write_result = 0  # 0: the length written
        self.read_error = False
        self.open_error = ""  # hid.device.error() after a failed open
        self.path = b"/dev/hidraw7"

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        assert (vendor_id, product_id) == (hid_transport.VID, hid_transport.PID)
        common = {"vendor_id": vendor_id, "product_id": product_id, "serial_number": "RP-7"}
        return [
            # the keypad's vendor interface, and some other HID collection to ignore
            {**common, "path": self.path, "usage_page": 0xFF00, "interface_number": 2},
            {**common, "path": b"/dev/hidraw8", "usage_page": 0x0001, "interface_number": 3},
        ]

    def device(self) -> Any:
        api = self

        class Device:
            def open_path(self, path: bytes) -> None:
                assert path == api.path
                if api.open_error:
                    raise OSError("open failed")

            def error(self) -> str:
                return api.open_error or "Success"

            def write(self, buff: bytes) -> int:
                api.writes.append(bytes(buff))
                return api.write_result or len(buff)

            def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
                api.reads.append((max_length, timeout_ms))
                if api.read_error:
                    raise OSError("read error")
                return api.replies.pop(0) if api.replies else []

            def close(self) -> None:
                pass

        return Device()


def test_hid_reports_carry_report_id_zero_and_read_one_report() -> None:
    api = RecordingHid()
    t = HidTransport("hid://RP-7", backend=api)
    t.open()
    assert t.path == b"/dev/hidraw7"
    t.write(bytes(range(1, 101)))  # 100 stream bytes: two reports
    assert [len(w) for w in api.writes] == [65, 65]
    assert all(w[0] == 0 for w in api.writes)  # hidapi: the report id first
    assert api.writes[0][1:] == bytes(range(1, 65))
    assert api.writes[1][1:] == bytes(range(65, 101)) + bytes(28)  # the last one zero-padded
    assert t.read(0.25) == bytes(range(64))
    assert t.read(0.0) == b""  # timeout: nothing
    assert api.reads == [(64, 250), (64, 1)]  # never 0 ms: hidapi would block for ever
    api.write_result = -1
    with pytest.raises(ratepad.DisconnectedError):
        t.write(b"\x01")
    api.read_error = True
    with pytest.raises(ratepad.DisconnectedError):
        t.read(0.1)
    t.close()
    with pytest.raises(ratepad.DisconnectedError, match="not open"):
        t.read(0.1)


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("Permission denied", ratepad.DevicePermissionError),
        ("Device or resource busy", ratepad.DeviceBusyError),
        ("No such file or directory", ratepad.DeviceNotFoundError),
        ("Something else", ratepad.TransportError),
    ],
)
def test_hid_open_failures_are_told_apart(reason: str, error: type[Exception]) -> None:
    api = RecordingHid()
    api.path = b"/nonexistent/hidraw7"
    api.open_error = f"Failed to open a device with path '/nonexistent/hidraw7': {reason}"
    with pytest.raises(error) as info:
        HidTransport("hid://RP-7", backend=api).open()
    assert type(info.value) is error
    if error is ratepad.TransportError:
        assert "ratepad doctor" in str(info.value)


def test_udev_rule_names_the_keypad() -> None:
    rules = (Path(__file__).parent.parent / "packaging" / "70-ratepad.rules").read_text()
    lines = [x for x in rules.splitlines() if x.strip() and not x.startswith("#")]
    assert len(lines) == 2
    vid, pid = f"{hid_transport.VID:04x}", f"{hid_transport.PID:04x}"
    for line in lines:
        assert f'{{idVendor}}=="{vid}"' in line and f'{{idProduct}}=="{pid}"' in line
        assert 'TAG+="uaccess"' in line and 'MODE="0660"' in line
    assert 'SUBSYSTEM=="usb"' in lines[0] and 'KERNEL=="hidraw*"' in lines[1]


def test_keypad_device_nodes(bus: SimulatedBus) -> None:
    assert hid_transport.keypad_device_nodes(backend("hid", bus)) == [
        f"/dev/hidraw{bus.port('RP-0001').hidraw}"
    ]


def test_hid_device_nodes() -> None:
    node = hid_transport._device_node
    assert node(b"/dev/hidraw3") == "/dev/hidraw3"
    assert node(b"0001:000a:02") == "/dev/bus/usb/001/010"  # hidapi's libusb backend
    assert node(b"IOService:/AppleACPIPlatformExpert/XHC1") is None


# -- the simulated backends -----------------------------------------------------------------------
def test_pyusb_sees_the_keypad(bus: SimulatedBus) -> None:
    import usb.core
    import usb.util

    from ratepad.sim.usb.usbsim import CONFIG_DESCRIPTOR, DEVICE_DESCRIPTOR, REPORT_DESCRIPTOR

    pyusb_backend = backend("usb", bus)
    dev = usb.core.find(idVendor=0x1209, idProduct=0x0001, backend=pyusb_backend)
    assert dev is not None
    assert (dev.serial_number, dev.product, dev.manufacturer) == (
        "RP-0001",
        "ratepad keypad",
        "ratepad",
    )
    cfg = dev.get_active_configuration()  # configured by the "OS" at plug time
    assert cfg.bConfigurationValue == 1 and cfg.bNumInterfaces == 3
    assert [i.bInterfaceClass for i in cfg] == [0x02, 0x0A, 0x03]  # CDC, CDC data, HID
    hid = usb.util.find_descriptor(cfg, bInterfaceClass=3)
    assert [(e.bEndpointAddress, e.bmAttributes, e.wMaxPacketSize) for e in hid] == [
        (0x83, 3, 64),
        (0x03, 3, 64),
    ]
    assert bytes(hid.extra_descriptors)[1] == 0x21  # the HID class descriptor
    # the same bytes through standard requests
    assert bytes(dev.ctrl_transfer(0x80, 6, 0x0100, 0, 18)) == DEVICE_DESCRIPTOR
    assert bytes(dev.ctrl_transfer(0x80, 6, 0x0200, 0, 255)) == CONFIG_DESCRIPTOR
    # the OS holds the interfaces: set_configuration and claiming are refused until detached
    # (pyusb claims the interface for interface requests too)
    with pytest.raises(usb.core.USBError) as busy:
        dev.set_configuration()
    assert busy.value.errno == errno.EBUSY
    for claim in (
        lambda: usb.util.claim_interface(dev, 2),
        lambda: dev.ctrl_transfer(0x81, 6, 0x2200, 2, 255),
    ):
        with pytest.raises(usb.core.USBError) as busy:
            claim()
        assert busy.value.errno == errno.EBUSY
    assert dev.is_kernel_driver_active(2)
    dev.detach_kernel_driver(2)
    usb.util.claim_interface(dev, 2)
    assert bytes(dev.ctrl_transfer(0x81, 6, 0x2200, 2, 255)) == REPORT_DESCRIPTOR
    assert REPORT_DESCRIPTOR[:3] == bytes((0x06, 0x00, 0xFF))  # usage page 0xFF00
    with pytest.raises(usb.core.USBError) as stall:
        dev.ctrl_transfer(0xA1, 1, 0x0100, 2, 64)  # GET_REPORT: stalled, as the firmware does
    assert stall.value.errno == errno.EPIPE
    hello = bytes(dev.read(0x83, 64, 1000))  # the link came up: the keypad says hello
    assert len(hello) == 64 and hello[0] != 0
    with pytest.raises(usb.core.USBTimeoutError):
        while True:
            dev.read(0x83, 64, 50)
    # pull the cable: the handle is dead, even after the keypad comes back
    bus.unplug("RP-0001")
    with pytest.raises(usb.core.USBError) as gone:
        dev.read(0x83, 64, 100)
    assert gone.value.errno == errno.ENODEV
    with pytest.raises(usb.core.USBError) as gone:
        dev.write(0x03, bytes(64), 100)
    assert gone.value.errno == errno.ENODEV
    assert usb.core.find(idVendor=0x1209, backend=pyusb_backend) is None
    old_address = dev.address
    bus.replug("RP-0001")
    with pytest.raises(usb.core.USBError):
        dev.read(0x83, 64, 100)
    usb.util.dispose_resources(dev)
    again = usb.core.find(idVendor=0x1209, backend=pyusb_backend)
    assert again is not None and again.address != old_address
    assert again.is_kernel_driver_active(2)  # usbhid bound again
    usb.util.dispose_resources(again)


def test_hidapi_fake_behaves_like_hidapi() -> None:
    kp = ratepad.sim.get("RP-0003", FAST)
    api = SimulatedHidApi([kp])
    (entry,) = api.enumerate(0x1209, 0x0001)
    assert entry["usage_page"] == 0xFF00 and entry["interface_number"] == 2
    assert api.enumerate(0x2E8A, 0x0005) == []
    dev = api.device()
    with pytest.raises(ValueError, match="not open"):
        dev.read(64, 10)
    dev.open_path(entry["path"])
    assert len(dev.read(64, 1000)) == 64  # hello
    assert dev.write(b"\x02" + bytes(64)) == -1  # the keypad has no report 2: refused
    assert dev.write(bytes(65)) == 65
    other = api.device()
    with pytest.raises(OSError, match="open failed"):
        other.open_path(entry["path"])
    assert "busy" in other.error()
    api.unplug("RP-0003")
    with pytest.raises(OSError, match="read error"):
        dev.read(64, 10)
    assert dev.write(bytes(65)) == -1
    assert api.enumerate() == []
    api.replug("RP-0003")
    with pytest.raises(OSError, match="read error"):
        dev.read(64, 10)  # a dead handle stays dead
    dev.close()
    (entry2,) = api.enumerate()
    assert entry2["path"] != entry["path"]  # a new hidraw node


def test_keypad_reconnects_after_unplug_over_usb(bus: SimulatedBus) -> None:
    """A replug without reboot (the keypad kept power) through the Keypad facade."""
    with connect("usb", bus) as kp:
        bus.unplug("RP-0001")
        deadline = time.monotonic() + 5
        lost = None
        while lost is None and time.monotonic() < deadline:
            event = kp.next_event(0.5)
            lost = event if isinstance(event, ratepad.Lost) else None
        assert lost is not None and "went away" in lost.reason
        bus.replug("RP-0001", reboot=False)
        connected = None
        while connected is None and time.monotonic() < deadline:
            event = kp.next_event(0.5)
            connected = event if isinstance(event, ratepad.Connected) else None
        assert connected is not None and connected.boot_id == 1  # the same boot
        assert kp.get_config("chord_ms") == {"chord_ms": "20"}
