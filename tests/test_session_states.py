"""The session's state table: every call is allowed exactly where the table says, misuse is a
LocalProtocolError in every state, and events are built from message fields by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from ratepad import events
from ratepad.errors import IncompatiblePeerError, LocalProtocolError
from ratepad.wire import codec
from ratepad.wire.session import ALLOWED, Session, SessionState

FLAGS = codec.HeaderFlags


def hello(version: int = codec.PROTOCOL_VERSION, serial: str = "RP-1") -> codec.Hello:
    return codec.Hello(
        version, codec.SCHEMA_FINGERPRINT, 5, codec.Capabilities(0), 20000, 3, 7, 1234, serial,
        "0.1.0", "pico", 2,
    )  # fmt: skip


def answered(message: codec.DeviceMessage, seq: int = 1) -> bytes:
    return codec.encode(message, seq, FLAGS.RESPONSE)


def session_in(state: SessionState) -> Session:
    s = Session(clock=lambda: 1_000_000)
    if state is SessionState.IDLE:
        return s
    s.open()
    if state is SessionState.SAYING:
        return s
    if state is SessionState.OPEN:
        s.receive_data(answered(hello()))
        return s
    if state is SessionState.FAILED:
        with pytest.raises(IncompatiblePeerError):
            s.receive_data(answered(hello(version=9)))
        return s
    s.close()
    return s


RATING = events.Rating("RP-1", 3, 7, 10, 0, True, 5, 5, "S1", 1, codec.RatingFlags(0))

CALLS: dict[str, Callable[[Session], object]] = {
    "open": lambda s: s.open(),
    "receive_data": lambda s: s.receive_data(b""),
    "poll": lambda s: s.poll(),
    "time_sync": lambda s: s.time_sync(),
    "request": lambda s: s.request(codec.CancelPrompt(0)),
    "confirm": lambda s: s.confirm(RATING),
    "close": lambda s: s.close(),
}


def test_the_table_covers_every_call() -> None:
    assert set(ALLOWED) == set(CALLS)


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.value)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_call_is_allowed_exactly_where_the_table_says(state: SessionState, call: str) -> None:
    s = session_in(state)
    assert s.state is state
    if state in ALLOWED[call]:
        CALLS[call](s)
    else:
        with pytest.raises(LocalProtocolError, match=f"{call}.*{state.value}"):
            CALLS[call](s)


def test_transitions() -> None:
    s = Session(clock=lambda: 5_000)
    assert s.state is SessionState.IDLE
    s.open()
    assert s.state is SessionState.SAYING
    s.receive_data(answered(hello()))
    assert s.state is SessionState.OPEN
    s.receive_data(codec.encode(hello(), 2))  # unsolicited: the keypad rebooted
    assert s.state is SessionState.SAYING
    s.receive_data(answered(hello(), 3))
    assert s.state is SessionState.OPEN
    with pytest.raises(IncompatiblePeerError):
        s.receive_data(answered(hello(version=2), 4))
    assert s.state is SessionState.FAILED
    assert s.poll() == b""  # a failed session does not say host_hello again
    s.close()
    assert s.state is SessionState.CLOSED


def test_one_host_hello_per_connection() -> None:
    now = [10_000]
    s = Session(clock=lambda: now[0])
    assert len(codec_messages(s.open(), codec.HostHello)) == 1
    now[0] += 50  # the keypad's boot hello crossed our host_hello: it answers ours
    assert codec_messages(s.receive_data(codec.encode(hello(), 1)), codec.HostHello) == []
    now[0] += 5_000  # it rebooted since (uptime 1234 ms): our host_hello was lost with it
    assert len(codec_messages(s.receive_data(codec.encode(hello(), 2)), codec.HostHello)) == 1


def codec_messages(data: bytes, kind: type) -> list[object]:
    from ratepad.wire.stream import Frame, decode_stream

    return [f.message for f in decode_stream(data) if isinstance(f, Frame)
            and isinstance(f.message, kind)]  # fmt: skip


def test_events_come_from_message_fields_by_name() -> None:
    s = Session(clock=lambda: 10_000)
    s.open()
    s.receive_data(answered(hello()))
    connected = s.next_event()
    assert isinstance(connected, events.Connected)
    h = hello()
    assert connected.boot_id == h.boot_count and connected.journal_used == h.journal_used
    assert connected.journal_capacity == h.journal_capacity and connected.acked_seq == h.acked_seq
    status = codec.Status(
        codec.DeviceState.IDLE, codec.Faults(0), 99, 11, 12, 13, 14, 15, 16, 17, 18, "S9", 19
    )
    s.receive_data(codec.encode(status, 5))
    got = s.next_event()
    assert isinstance(got, events.Status)
    for f in dataclasses.fields(events.Status):
        if f.name != "serial":
            assert getattr(got, f.name) == getattr(status, f.name), f.name
