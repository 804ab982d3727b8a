"""The firmware's COBS (generated, byte by byte) against the `cobs` library, both directions."""

from __future__ import annotations

from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

import fw_cpython

FW = fw_cpython.load("codec")
EDGES = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"a\x00",
    b"\x00a",
    b"x" * 253,
    b"x" * 254,
    b"x" * 255,
    b"x" * 508,
    b"x" * 254 + b"\x00",
    b"x" * 254 + b"\x00y",
    bytes(range(1, 256)),
]


def check(data: bytes) -> None:
    out = bytearray(2 * len(data) + 4)
    n = FW.cobs_encode_into(data, len(data), out)
    assert bytes(out[:n]) == cobs.encode(data) + b"\x00"
    back = bytearray(len(data) + 4)
    m = FW.cobs_decode_into(bytes(out[:n]), n - 1, back)
    assert bytes(back[:m]) == data


def test_edge_cases() -> None:
    for data in EDGES:
        check(data)


@settings(max_examples=500)
@given(st.binary(max_size=700) | st.lists(st.sampled_from([0, 1, 255]), max_size=600).map(bytes))
def test_random_data(data: bytes) -> None:
    check(data)


@given(st.binary(min_size=1, max_size=300))
def test_decoder_rejects_or_matches_the_library(data: bytes) -> None:
    data = data.replace(b"\x00", b"\x01")
    out = bytearray(len(data) + 4)
    m = FW.cobs_decode_into(data, len(data), out)
    try:
        expected = cobs.decode(data)
    except cobs.DecodeError:
        assert m == -1
    else:
        assert m >= 0 and bytes(out[:m]) == expected
