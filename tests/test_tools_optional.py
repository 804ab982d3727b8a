"""Optional runtimes and tools fail in one clear line, with advice that works from a wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ratepad import ToolError, resources
from ratepad.tools import doctor, firmware, mpvm

ROOT = Path(__file__).resolve().parents[1]


def _ratepad(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_doctor_prints_the_shipped_udev_rule() -> None:
    done = _ratepad("doctor", "--udev-rule")
    assert done.returncode == 0
    assert done.stdout == (ROOT / "packaging" / "70-ratepad.rules").read_text(encoding="utf-8")
    assert resources.resource(resources.UDEV_RULE).is_file()


def test_doctor_advice_names_no_checkout_file() -> None:
    assert "packaging/" not in doctor.INSTALL_RULE
    assert "ratepad doctor --udev-rule" in doctor.INSTALL_RULE


def test_doctor_without_node_warns_in_one_check(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no node here
    done = subprocess.run(
        [sys.executable, "-m", "ratepad", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode in (0, 1) and not done.stderr
    checks = {c["check"]: c for c in map(json.loads, done.stdout.splitlines())}
    assert checks["node"]["status"] == "warn"
    assert "Node.js" in checks["node"]["fix"]
    assert checks["firmware"]["status"] == "ok"


def test_doctor_reports_the_vm(tmp_path: Path) -> None:
    checks = {c.name: c for c in doctor.run_checks()}
    assert checks["micropython"].status == "ok", checks["micropython"]


def test_missing_vm_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(mpvm.MicroPythonVMUnavailable) as caught:
        mpvm.find_node_modules(tmp_path)
    message = str(caught.value)
    assert f"npm install {mpvm.PACKAGE}@{mpvm.VM_VERSION}" in message
    assert isinstance(caught.value, ToolError)


def test_vm_version_is_the_pinned_one() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{mpvm.PACKAGE}"]["version"] == mpvm.VM_VERSION


def test_flash_hello_check_is_skipped_without_hidapi(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def no_hidapi(name: str, *args: object) -> object:
        return None if name in ("hid", "hidraw") else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", no_hidapi)
    with pytest.raises(firmware.HelloUnavailable, match=r"ratepad\[hid\]"):
        firmware.default_hello_reader("RP-0001", 1.0)


def test_firmware_errors_are_in_the_tree() -> None:
    assert issubclass(firmware.FirmwareToolError, ToolError)
    assert issubclass(mpvm.MicroPythonError, ToolError)
    assert issubclass(mpvm.MicroPythonBridgeError, ToolError)
