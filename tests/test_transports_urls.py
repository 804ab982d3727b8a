"""Keypad URLs are checked when parsed (BadURLError, one reason), and tcp:// polls with read(0).

sim:// settings are checked with the firmware's own rules (firmware/rpfw/settings.py), so the
expected reasons below are the firmware's.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

import ratepad
from ratepad.errors import BadURLError, DisconnectedError, LocalProtocolError
from ratepad.transports import open_transport
from ratepad.transports.tcp import TcpTransport


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("bogus://x", "unknown transport 'bogus'"),
        ("tcp://127.0.0.1:99999/K1", "PORT of 1..65535"),
        ("tcp://127.0.0.1:0/K1", "PORT of 1..65535"),
        ("tcp://127.0.0.1:http/K1", "PORT of 1..65535"),
        ("tcp://[::1/K1", "Invalid IPv6 URL"),
        ("tcp://127.0.0.1:7000/" + "K" * 65, "longer than 64 bytes"),
        ("sim://K1?keys=9&bogus=1&debounce_ms=abc", "keys='9': out of range 3..5"),
        ("sim://K1?bogus=1", "bogus='1': unknown setting (known: "),
        ("sim://K1?debounce_ms=abc", "debounce_ms='abc': not an integer"),
        ("sim://K1?capacity=-1", "capacity='-1': out of range 1..20000"),
        ("sim://K1?keys=4&key_order=12345", "key_order needs 4 digits"),
        ("sim://K1?debounce=soon", "one of defer/eager/asym"),
        ("sim://K1?serial=%FF", "not valid UTF-8"),
        ("sim://K1?keys=4&keys=3", "given twice"),
        ("sim://" + "K" * 17, "serial='KKKKKKKKKKKKKKKKK': length out of range"),
        ("sim://K\udcff", "not valid UTF-8"),
        ("sim://K1\n", "control characters"),
        ("nothing", "is not a keypad URL"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(BadURLError) as refused:
        open_transport(url)
    assert reason in str(refused.value)
    assert isinstance(refused.value, LocalProtocolError)  # the caller's error: CLI exit 2
    with pytest.raises(BadURLError):
        ratepad.open(url)


@pytest.mark.parametrize(
    "url",
    [
        "sim://K1",
        "sim://K1?keys=3&key_order=321",
        "sim://K1?key_order=54321&debounce=eager&buzzer=on",
        "sim://K1?serial=RP-0001",
        "tcp://127.0.0.1:7000/K1",
        "tcp://[::1]:7000/K1",
    ],
)
def test_good_urls_parse(url: str) -> None:
    open_transport(url)


def test_settings_in_a_sim_url_reach_the_keypad() -> None:
    ratepad.sim.reset()
    with ratepad.open("sim://SU1?keys=3&key_order=321") as kp:
        assert kp.info.key_count == 3
        assert kp.get_config()["key_order"] == "321"
    ratepad.sim.reset()


@pytest.fixture
def connected_pair() -> Iterator[tuple[TcpTransport, socket.socket]]:
    """A TcpTransport connected to a server socket that answered the handshake."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []

    def accept() -> None:
        conn, _ = server.accept()
        buf = b""
        while not buf.endswith(b"\n"):
            buf += conn.recv(1)
        conn.sendall(b"OK\n")
        accepted.append(conn)

    t = threading.Thread(target=accept)
    t.start()
    transport = TcpTransport(f"tcp://127.0.0.1:{port}/R0")
    transport.open()
    t.join(5)
    try:
        yield transport, accepted[0]
    finally:
        transport.close()
        accepted[0].close()
        server.close()


def test_read_0_polls_instead_of_reporting_a_disconnect(
    connected_pair: tuple[TcpTransport, socket.socket],
) -> None:
    transport, peer = connected_pair
    assert transport.read(0) == b""  # nothing yet: not a disconnect
    peer.sendall(b"\x01\x02")
    data = b""
    for _ in range(200):
        data += transport.read(0.01 if not data else 0)
        if len(data) >= 2:
            break
    assert data == b"\x01\x02"
    assert transport.read(0) == b""
    assert transport.read(0.05) == b""  # and a timeout still works after a poll
    peer.close()
    with pytest.raises(DisconnectedError):
        for _ in range(100):
            transport.read(0.05)
