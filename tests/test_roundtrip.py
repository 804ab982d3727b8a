"""Property tests: random messages round-trip both ways between construct and each codec."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratepad.wire import codec
from ratepad_protocol import reference

import fw_cpython
from strategies import messages

FW = fw_cpython.load("codec")
seqs = st.integers(0, 0xFFFF)


@settings(max_examples=400)
@given(messages, seqs)
def test_construct_to_host_codec_and_back(msg: tuple[str, dict[str, Any]], seq: int) -> None:
    type_name, fields = msg
    frame = reference.encode_frame(type_name, fields, seq)
    header, decoded = codec.decode_frame(frame)
    assert header.seq == seq
    assert codec.message_fields(decoded) == (type_name, fields)
    assert codec.encode(decoded, seq) == frame
    assert reference.decode_frame(codec.encode_frame(type_name, fields, seq)) == msg


@settings(max_examples=400)
@given(messages, seqs)
def test_construct_to_firmware_codec_and_back(msg: tuple[str, dict[str, Any]], seq: int) -> None:
    type_name, fields = msg
    frame = reference.encode_frame(type_name, fields, seq)
    assert FW.decode_frame(frame) == msg
    assert FW.encode_frame(type_name, fields, seq) == frame
    assert reference.decode_frame(FW.encode_frame(type_name, fields, seq)) == msg


@given(messages, st.binary(max_size=20))
def test_a_longer_payload_from_a_newer_peer_keeps_the_known_fields(
    msg: tuple[str, dict[str, Any]], tail: bytes
) -> None:
    type_name, fields = msg
    type_id, payload = reference.encode_payload(type_name, fields)
    frame = reference.encode_frame(
        "unknown", {"type_id": type_id, "payload": (payload + tail).hex()}
    )
    assert reference.decode_frame(frame) == msg
    assert codec.message_fields(codec.decode_frame(frame)[1]) == msg
    assert FW.decode_frame(frame) == msg


def test_a_shorter_payload_from_an_older_peer_reads_missing_fields_as_zero() -> None:
    # An older rating without prompt_id, flags and staff_id.
    fields = {
        "journal_seq": 7,
        "boot_id": 2,
        "uptime_ms": 1000,
        "epoch_ms": 5,
        "score": 4,
        "key_count": 5,
        "prompt_id": 0,
        "flags": [],
        "staff_id": "",
    }
    _, payload = reference.encode_payload("rating", fields)
    old = reference.encode_frame("unknown", {"type_id": 0x02, "payload": payload[:22].hex()})
    assert reference.decode_frame(old) == ("rating", fields)
    assert codec.message_fields(codec.decode_frame(old)[1]) == ("rating", fields)
    assert FW.decode_frame(old) == ("rating", fields)


def test_unknown_enum_values_and_flag_bits_are_reported_not_rejected() -> None:
    fields = {
        "state": 200,
        "faults": ["stuck_key", "bit15"],
        "uptime_ms": 1,
        "journal_used": 0,
        "unacked": 0,
        "presses": 0,
        "unprompted": 0,
        "repeats": 0,
        "multi_key": 0,
        "stuck_keys": 0,
        "prompt_id": 0,
        "staff_id": "",
        "acked_seq": 0,
    }
    frame = reference.encode_frame("status", fields)
    _, msg = codec.decode_frame(frame)
    assert isinstance(msg, codec.Status)
    assert msg.state == 200
    assert codec.Faults.STUCK_KEY in msg.faults
    assert codec.message_fields(msg) == ("status", fields)
    assert FW.decode_frame(frame) == ("status", fields)


def test_encoders_reject_values_that_do_not_fit() -> None:
    import pytest

    good = {"prompt_id": 1, "timeout_ms": 1, "staff_id": "S"}
    for bad in (
        {"prompt_id": -1},
        {"prompt_id": 1 << 32},
        {"staff_id": "x" * 17},
        {"staff_id": "满" * 6},
        {"timeout_ms": "5"},
    ):
        with pytest.raises(ValueError):
            codec.encode_frame("prompt", {**good, **bad})
    with pytest.raises(ValueError):
        codec.encode_frame("rating", {"journal_seq": 1})
    with pytest.raises(ValueError):
        codec.encode_frame("no_such_message", {})


def test_a_text_length_past_the_payload_says_both() -> None:
    """A text field's length byte above its size: a payload error that says the length, the
    limit, and, when the byte also points past the payload's end, how much was left."""
    import struct
    import zlib

    import pytest
    from cobs import cobs

    from ratepad.errors import FrameError

    def frame(payload: bytes) -> bytes:
        body = struct.pack("<BBBH", 1, 0, 0x46, 0) + payload  # logout: staff_id first
        return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\0"

    with pytest.raises(FrameError) as past:
        codec.decode_frame(frame(b"\xc8abc"))
    assert past.value.kind == "payload"
    assert "length byte 200, longer than 16 bytes, and only 3 bytes follow" in str(past.value)
    with pytest.raises(FrameError) as inside:
        codec.decode_frame(frame(b"\x11" + b"x" * 17))
    assert "length byte 17, longer than 16 bytes" in str(inside.value)
    assert "follow" not in str(inside.value)
