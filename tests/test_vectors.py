"""The golden vectors against construct (the reference), the host codec and the firmware codec."""

from __future__ import annotations

from typing import Any

import pytest

from ratepad.wire import codec
from ratepad_protocol import reference
from ratepad_protocol.reference import MODEL

import fw_cpython
from conftest import VECTOR_FILES, load_vectors

VECTORS = load_vectors()
IDS = [v["name"] for v in VECTORS]
FW = fw_cpython.load("codec")


def split(v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    msg = dict(v["message"])
    return msg.pop("type"), msg


def header_flags(v: dict[str, Any]) -> int:
    bits = 0
    for name in v.get("header_flags", []):
        bits |= codec.HeaderFlags[name.upper()]
    return bits


def test_vector_files_follow_the_contract() -> None:
    assert VECTOR_FILES, "no vector files"
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "vector names must be unique"
    for v in VECTORS:
        assert set(v) <= {"name", "message", "frame_hex", "seq", "header_flags"}
        assert isinstance(v["name"], str) and isinstance(v["message"]["type"], str)
        frame = bytes.fromhex(v["frame_hex"])
        assert frame.endswith(b"\x00") and b"\x00" not in frame[:-1]


def test_every_message_type_has_zero_and_max_vectors() -> None:
    names = {v["name"] for v in VECTORS}
    for spec in MODEL.messages:
        assert f"{spec.name}/zero" in names
        if spec.fields:
            assert f"{spec.name}/max" in names
    assert any(v["message"]["type"] == "unknown" for v in VECTORS)


def test_vectors_are_generated_from_the_current_schema() -> None:
    from ratepad_protocol.make_vectors import build_vectors

    built = [v for vs in build_vectors().values() for v in vs]
    assert {v["name"]: v for v in built} == {v["name"]: v for v in VECTORS}


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_reference(v: dict[str, Any]) -> None:
    frame = bytes.fromhex(v["frame_hex"])
    header, _, fields = reference.decode_frame_with_header(frame)
    assert fields == v["message"]
    assert header.seq == v.get("seq", 0)
    assert list(header.flags) == v.get("header_flags", [])
    type_name, plain = split(v)
    flags = tuple(v.get("header_flags", []))
    assert reference.encode_frame(type_name, plain, v.get("seq", 0), flags) == frame


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_host_codec(v: dict[str, Any]) -> None:
    frame = bytes.fromhex(v["frame_hex"])
    header, message = codec.decode_frame(frame)
    assert codec.message_fields(message) == split(v)
    assert header.seq == v.get("seq", 0)
    assert header.flags == header_flags(v)
    type_name, plain = split(v)
    assert codec.encode_frame(type_name, plain, v.get("seq", 0), header_flags(v)) == frame


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_firmware_codec_on_cpython(v: dict[str, Any]) -> None:
    frame = bytes.fromhex(v["frame_hex"])
    assert FW.decode_frame(frame) == split(v)
    assert FW.header_of(frame) == (v.get("seq", 0), v.get("header_flags", []))
    type_name, plain = split(v)
    assert FW.encode_frame(type_name, plain, v.get("seq", 0), v.get("header_flags", [])) == frame


def _flips(frame: bytes) -> list[bytes]:
    out = []
    for i in range(len(frame)):
        for bit in range(8):
            f = bytearray(frame)
            f[i] ^= 1 << bit
            out.append(bytes(f))
    return out


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_every_single_bit_flip_is_an_error(v: dict[str, Any]) -> None:
    """A flipped bit never decodes as a (different) message, in any codec, nor as a stream."""
    from ratepad.wire.stream import BadSpan, Frame, decode_stream

    for flipped in _flips(bytes.fromhex(v["frame_hex"])):
        with pytest.raises(ValueError):
            reference.decode_frame(flipped)
        with pytest.raises(codec.FrameError):
            codec.decode_frame(flipped)
        with pytest.raises(ValueError):
            FW.decode_frame(flipped)
        items = decode_stream(flipped)
        assert not any(isinstance(i, Frame) for i in items)
        assert all(isinstance(i, BadSpan) for i in items)
