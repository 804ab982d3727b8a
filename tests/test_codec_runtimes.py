"""The generators' runtimes are real files, tested directly (not only through generated code)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import types
from pathlib import Path

import cobs.cobs
import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "protocol" / "ratepad_protocol" / "runtime" / "firmware_codec.py"


def _load_firmware_runtime() -> types.ModuleType:
    shim = types.ModuleType("micropython")
    shim.const = lambda x: x  # type: ignore[attr-defined]
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = shim
    try:
        spec = importlib.util.spec_from_file_location("_fw_codec_runtime", RUNTIME)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved


RT = _load_firmware_runtime()


@given(st.binary(max_size=290))
def test_firmware_cobs_encode_matches_the_library(data: bytes) -> None:
    out = bytearray(len(data) + len(data) // 254 + 3)
    n = RT.cobs_encode_into(data, len(data), out)
    assert bytes(out[:n]) == cobs.cobs.encode(data) + b"\x00"


@given(st.binary(max_size=290))
def test_firmware_cobs_decode_inverts_the_library(data: bytes) -> None:
    encoded = cobs.cobs.encode(data)
    out = bytearray(len(encoded) + 1)
    n = RT.cobs_decode_into(encoded, len(encoded), out)
    assert bytes(out[:n]) == data


@given(st.binary(max_size=64))
def test_firmware_cobs_decode_refuses_what_the_library_refuses(data: bytes) -> None:
    out = bytearray(len(data) + 1)
    n = RT.cobs_decode_into(data, len(data), out)
    try:
        expected: bytes | None = cobs.cobs.decode(data)
    except cobs.cobs.DecodeError:
        expected = None
    if expected is None:
        assert n == -1
    else:
        assert bytes(out[:n]) == expected


def test_flag_names_name_unknown_bits() -> None:
    members = (("unprompted", 1), ("repeat", 4))
    assert RT._flag_names(members, 0b1101) == ["unprompted", "repeat", "bit3"]
    assert RT._flag_names(members, 0) == []


def test_enum_name_falls_back_to_the_number() -> None:
    assert RT._enum_name((("idle", 0), ("prompted", 1)), 1) == "prompted"
    assert RT._enum_name((("idle", 0),), 7) == 7


LUA_RUNTIME = ROOT / "protocol" / "ratepad_protocol" / "runtime" / "dissector.lua"


@pytest.mark.parametrize(
    "path", [LUA_RUNTIME, ROOT / "wireshark" / "ratepad.lua"], ids=["runtime", "generated"]
)
def test_dissector_lua_is_valid_lua(path: Path) -> None:
    luac = shutil.which("luac5.2") or shutil.which("luac")
    if luac is None:
        pytest.skip("luac (Debian: lua5.2, installed by make setup) not found")
    done = subprocess.run([luac, "-p", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_generated_dissector_carries_the_runtime_unchanged() -> None:
    runtime = LUA_RUNTIME.read_text(encoding="utf-8")
    assert runtime in (ROOT / "wireshark" / "ratepad.lua").read_text(encoding="utf-8")
