"""One definition of the keypad's USB descriptors: the simulated bus enumerates with the bytes
the firmware builds, and the host's constants agree with the firmware's. Nothing here skips: if
the firmware cannot be loaded, these fail."""

from __future__ import annotations

from typing import Any

from firmware_engines import cpython_namespace

from ratepad.sim.usb import hidsim
from ratepad.tools.fwsource import load
from ratepad.transports import hid


def _booted(serial: str) -> Any:
    ns = cpython_namespace()
    machine = ns.import_module("machine")
    usbhid = ns.import_module("rpfw.usbhid")
    storage = ns.import_module("sim.memstorage").MemStorage()
    storage.files["settings"] = bytearray(f"serial={serial}\n".encode())
    machine.fake_reset()
    usbhid.boot(storage, False)
    return machine.USBDevice(), usbhid


def test_the_simulated_bus_uses_the_descriptors_the_firmware_gives_usb() -> None:
    from ratepad.sim.usb import usbsim

    usbd, usbhid = _booted("RP-0001")
    assert bytes(usbd.desc_dev) == usbsim.DEVICE_DESCRIPTOR
    assert bytes(usbd.desc_cfg) == usbsim.CONFIG_DESCRIPTOR
    assert bytes(usbhid.REPORT_DESC) == usbsim.REPORT_DESCRIPTOR
    strings = usbd.desc_strs
    assert strings[3] == "RP-0001"
    for i, text in usbsim.STRINGS.items():
        assert i == 4 or strings[i] == text, i  # 4: MicroPython's own CDC string


def test_host_constants_match_the_firmware() -> None:
    desc = load("sim.usbdesc").keypad_descriptors()
    usbhid = load("rpfw.usbhid")
    dev, _cfg, report, strings, itf, ep_in, ep_out = desc
    assert (hid.VID, hid.PID) == (usbhid.VID, usbhid.PID)
    assert dev[8:12] == bytes((hid.VID & 0xFF, hid.VID >> 8, hid.PID & 0xFF, hid.PID >> 8))
    assert (strings[1], strings[2]) == (hidsim.MANUFACTURER, hid.PRODUCT)
    assert itf == hidsim.HID_INTERFACE and hidsim.CDC_INTERFACES == (0, 1)
    assert hidsim.REPORT_SIZE == usbhid.REPORT == 64
    assert report[:3] == bytes((0x06, hid.USAGE_PAGE & 0xFF, hid.USAGE_PAGE >> 8))
    assert ep_in & 0x80 and ep_out == ep_in & 0x7F


def test_the_firmware_stays_out_of_the_host_import_path() -> None:
    import importlib
    import sys

    path = list(sys.path)
    load("rpfw.core")
    load("sim.simkeypad")
    load("machine")
    assert sys.path == path
    for name in ("boot", "main", "machine", "micropython", "rpfw", "sim.simkeypad"):
        assert name not in sys.modules, name
    for name in ("boot", "machine", "micropython", "rpfw"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        raise AssertionError(f"`import {name}` works in the host")
    core = sys.modules["ratepad._fw.rpfw.core"]
    assert core.Core.__module__ == "ratepad._fw.rpfw.core"
