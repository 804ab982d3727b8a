"""Versions: one source, what `ratepad --version` says, the compatibility matrix and the USB
identity in docs/compatibility.md, checked against the code's constants."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import ratepad
from ratepad.agent.store.schema import SCHEMA_VERSION
from ratepad.tools.firmware import carried_firmware_version
from ratepad.transports import usbid
from ratepad.wire import codec

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compatibility.md"


def _matrix() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- compatibility-matrix -->\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip().strip("|").split("|") for line in table.splitlines()]
    header = [cell.strip() for cell in lines[0]]
    return [dict(zip(header, (c.strip() for c in row), strict=True)) for row in lines[2:]]


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "ratepad.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", ratepad.__version__)


def test_version_names_host_protocol_and_firmware() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ratepad", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"ratepad {ratepad.__version__}",
        f"protocol {codec.PROTOCOL_VERSION} (schema {codec.SCHEMA_FINGERPRINT:#010x})",
        f"firmware {carried_firmware_version()}",
    ]


def test_the_matrix_top_row_is_this_release() -> None:
    urls = (ROOT / "server" / "ratepad_server" / "urls.py").read_text(encoding="utf-8")
    api = re.search(r'path\("(api/v\d+/)", api\.urls\)', urls)
    assert api, "the server's API path moved: update this test and docs/compatibility.md"
    top = _matrix()[0]
    assert top == {
        "ratepad (host, server)": ratepad.__version__,
        "firmware": carried_firmware_version(),
        "protocol": str(codec.PROTOCOL_VERSION),
        "schema fingerprint": f"{codec.SCHEMA_FINGERPRINT:#010x}",
        "agent store": str(SCHEMA_VERSION),
        "server API": f"/{api.group(1)}",
    }


def test_the_changelog_has_this_release() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(ratepad.__version__)} - \d{{4}}-\d\d-\d\d$", text, re.M)


def test_the_usb_identity_is_documented_as_the_firmware_has_it() -> None:
    firmware = (ROOT / "firmware" / "rpfw" / "usbhid.py").read_text(encoding="utf-8")
    fw_ids = [int(re.search(rf"^{name} = const\((0x[0-9A-Fa-f]+)\)", firmware, re.M)[1], 16)  # type: ignore[index]
              for name in ("VID", "PID")]  # fmt: skip
    assert fw_ids == [usbid.VID, usbid.PID]
    doc = DOC.read_text(encoding="utf-8")
    assert f"**{usbid.VID:04x}:{usbid.PID:04x}**" in doc
    if (usbid.VID, usbid.PID) == (0x1209, 0x0001):
        assert "test PID" in doc and "pid.codes" in doc
