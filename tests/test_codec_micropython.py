"""The generated firmware codec on the real MicroPython VM: vectors, bit flips, round trips."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from firmware_engines import FIRMWARE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratepad.tools.mpvm import MicroPythonVM
from ratepad_protocol import reference

from conftest import load_vectors
from strategies import messages

pytestmark = pytest.mark.micropython

VECTORS = load_vectors()


@pytest.fixture(scope="module")
def vm() -> Iterator[MicroPythonVM]:
    with MicroPythonVM(timeout=600) as machine:
        machine.add_dir(FIRMWARE / "rpfw", "/lib/rpfw")
        # Python literals, not JSON: MicroPython's json reads integers past 2**53 as floats.
        machine.add_files({"/lib/vectors_data.py": f"VECTORS = {VECTORS!r}\n".encode()})
        machine.exec(
            "from rpfw import codec\nfrom vectors_data import VECTORS\nfrom binascii import hexlify"
        )
        yield machine


CHECK_VECTORS = """
def check_vectors():
    from binascii import unhexlify
    bad = []
    for v in VECTORS:
        frame = unhexlify(v["frame_hex"])
        msg = dict(v["message"])
        name = msg.pop("type")
        seq = v.get("seq", 0)
        flags = v.get("header_flags", [])
        try:
            if codec.decode_frame(frame) != (name, msg):
                bad.append(v["name"] + ": decode")
            if codec.header_of(frame) != (seq, flags):
                bad.append(v["name"] + ": header")
            if codec.encode_frame(name, msg, seq, flags) != frame:
                bad.append(v["name"] + ": encode")
        except Exception as e:
            bad.append(v["name"] + ": " + repr(e))
    return bad


def count_flips_not_rejected():
    from binascii import unhexlify
    accepted = 0
    total = 0
    for v in VECTORS:
        frame = bytearray(unhexlify(v["frame_hex"]))
        for i in range(len(frame)):
            for bit in range(8):
                frame[i] ^= 1 << bit
                total += 1
                try:
                    codec.decode_frame(bytes(frame))
                    accepted += 1
                except ValueError:
                    pass
                frame[i] ^= 1 << bit
    return accepted, total
"""


def test_every_vector_decodes_and_encodes_identically_on_micropython(vm: MicroPythonVM) -> None:
    vm.exec(CHECK_VECTORS)
    assert vm.eval("check_vectors()") == []


def test_every_single_bit_flip_is_rejected_on_micropython(vm: MicroPythonVM) -> None:
    vm.exec(CHECK_VECTORS)
    accepted, total = vm.eval("count_flips_not_rejected()")
    assert total > 10_000
    assert accepted == 0


@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages, st.integers(0, 0xFFFF))
def test_random_messages_round_trip_with_construct_on_micropython(
    vm: MicroPythonVM, msg: tuple[str, dict[str, Any]], seq: int
) -> None:
    type_name, fields = msg
    frame = reference.encode_frame(type_name, fields, seq)
    # MicroPython decodes construct's frame, and encodes the same bytes from the same values
    decoded, encoded_hex = vm.eval(
        f"[codec.decode_frame({frame!r}), "
        f"str(hexlify(codec.encode_frame({type_name!r}, {fields!r}, {seq})), 'ascii')]"
    )
    assert (decoded[0], decoded[1]) == msg
    assert bytes.fromhex(encoded_hex) == frame
