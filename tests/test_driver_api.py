"""Driver ergonomics: listeners, logging, connection state, reconnect policy, close(), delivery
rules, prompt timeouts, and an incompatible keypad reported as such (not as timeouts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import ratepad
from ratepad.events import Connected, Event, Lost, Rating, Status
from ratepad.transports import Transport
from ratepad.wire import codec
from ratepad.wire.stream import StreamDecoder

FAST = "debounce_ms=5&chord_ms=20&repeat_guard_ms=0&thanks_ms=200"


@pytest.fixture(autouse=True)
def fresh_keypads() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


def _hello(version: int, serial: str = "X1") -> codec.Hello:
    return codec.Hello(
        version,
        codec.SCHEMA_FINGERPRINT,
        5,
        codec.Capabilities(0),
        1,
        0,
        1,
        0,
        serial,
        "0.1.0",
        "sim",
        0,
    )


class ScriptedKeypad(Transport):
    """A keypad link that answers host_hello with a given hello and every command with OK.

    Answers as firmware/rpfw/core.py does: hello with the RESPONSE flag to host_hello (keypad
    session opened), result OK to a command, nothing to ACK and time sync."""

    scheme = "scripted"

    def __init__(self, version: int = codec.PROTOCOL_VERSION) -> None:
        super().__init__("scripted://X1")
        self.version = version
        self._out = bytearray()
        self._cond = threading.Condition()
        self._decoder = StreamDecoder()
        self._seq = 0

    def _frame(self, message: codec.DeviceMessage, flags: int = 0) -> None:
        self._seq += 1
        self._out += codec.encode(message, self._seq, codec.HeaderFlags(flags))
        self._cond.notify_all()

    def say(self, message: codec.DeviceMessage, flags: int = 0) -> None:
        with self._cond:
            self._frame(message, flags)

    def open(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        with self._cond:
            for frame in self._decoder.feed(data):
                m = getattr(frame, "message", None)
                if isinstance(m, codec.HostHello):
                    self._frame(_hello(self.version), codec.HeaderFlags.RESPONSE)
                elif m is not None and not isinstance(m, codec.Ack | codec.TimeSync):
                    self._frame(codec.Result(frame.seq, codec.ResultCode.OK, ""))

    def read(self, timeout: float) -> bytes:
        with self._cond:
            if not self._out:
                self._cond.wait(timeout)
            data, self._out = bytes(self._out), bytearray()
            return data

    def close(self) -> None:
        pass


def test_an_incompatible_hello_at_open_raises_the_real_error_at_once() -> None:
    # waiting out the connect timeout would raise RatepadTimeout, not the keypad's error
    with pytest.raises(ratepad.IncompatiblePeerError, match="protocol version 9"):
        ratepad.Keypad(ScriptedKeypad(version=9), connect_timeout=60)


def test_an_incompatible_hello_after_connecting_raises_the_real_error() -> None:
    link = ScriptedKeypad()
    kp = ratepad.Keypad(link, command_timeout=2)
    try:
        kp.login("S1")  # a working link
        link.say(_hello(9))  # the keypad comes back with another protocol version
        assert isinstance(list(kp.events(timeout=5))[-1], Lost)  # events end with the link
        with pytest.raises(ratepad.IncompatiblePeerError):
            kp.login("S1")
        assert kp.closed and not kp.connected
    finally:
        kp.close()


def test_one_connected_and_one_status_per_connection_and_listeners() -> None:
    # (the rule itself, a status echo is not news, is the driver core's: test_driver_core.py)
    seen: list[Event] = []
    with ratepad.open(f"sim://L1?{FAST}", listeners=[seen.append]) as kp:
        queued = [kp.next_event(5), kp.next_event(5)]
        assert [type(e) for e in queued] == [Connected, Status]
        assert seen[:2] == queued  # the listener saw what events() gives, in order
        kp.remove_listener(seen.append)


def test_a_prompted_rating_is_delivered_once_and_info_is_typed() -> None:
    with ratepad.open(f"sim://L2?{FAST}") as kp:
        info: Connected = kp.info  # not Optional
        assert info.serial == "L2" and kp.connected
        list(kp.events(timeout=0.2))
        threading.Timer(0.1, lambda: ratepad.sim.get("L2").press(4)).start()
        rating = kp.prompt("S1", timeout=5)
        assert rating.score == 4
        assert not [e for e in kp.events(timeout=0.5) if isinstance(e, Rating)]
        # claim=False: the rating goes to events() (the agent stores from there) too
        handle = kp.start_prompt("S1", timeout=5, claim=False)
        ratepad.sim.get("L2").press(2)
        assert handle.wait().score == 2 and handle.state == "answered"
        assert [e.score for e in kp.events(timeout=0.5) if isinstance(e, Rating)] == [2]


def test_close_wakes_a_blocked_prompt_and_ends_events() -> None:
    kp = ratepad.open(f"sim://L3?{FAST}")
    errors: list[BaseException] = []
    ended = threading.Event()

    def waiter() -> None:
        try:
            kp.prompt("S1", timeout=30)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        list(kp.events())
        ended.set()

    threads = [threading.Thread(target=waiter), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    kp.close()  # whether they block already or only now: they end
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ratepad.DisconnectedError)
    assert ended.is_set()
    with pytest.raises(ratepad.DisconnectedError):
        kp.login("S1")


def test_a_superseded_prompt_is_told_at_once() -> None:
    with ratepad.open(f"sim://L4?{FAST}") as kp:
        first = kp.start_prompt("S1", timeout=30)
        second = kp.start_prompt("S2", timeout=30)
        with pytest.raises(ratepad.PromptEndedError, match="superseded"):
            first.wait(1)
        assert first.state == "superseded" and second.state == "issued"
        second.cancel()
        assert second.state == "cancelled"


def test_a_sub_millisecond_timeout_is_not_no_timeout() -> None:
    with ratepad.open(f"sim://L5?{FAST}") as kp:
        with pytest.raises(ratepad.RatepadTimeout):
            kp.prompt("S1", timeout=0.0005)  # sent as 1 ms (test_driver_core.py), not 0
        for bad in (0, -1, float("nan"), float("inf"), 1e12):
            with pytest.raises(ratepad.LocalProtocolError):
                kp.start_prompt("S1", timeout=bad)


def test_reconnect_off_ends_the_keypad_and_calls_on_disconnect() -> None:
    reasons: list[str] = []
    kp = ratepad.open(f"sim://L6?{FAST}", reconnect="off", on_disconnect=reasons.append)
    try:
        blocked: list[BaseException] = []

        def waiter() -> None:
            try:
                kp.prompt("S1", timeout=30)
            except BaseException as exc:
                blocked.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        kp.transport.close()  # the link breaks under the reader (armed or arming: the same)
        t.join(10)
        assert blocked and isinstance(blocked[0], ratepad.DisconnectedError)
        assert len(reasons) == 1 and not kp.connected and kp.closed
        assert any(isinstance(e, Lost) for e in kp.events(timeout=0.2))
    finally:
        kp.close()


def test_reconnect_policies() -> None:
    assert ratepad.ReconnectPolicy.of("off").delay_for(0) is None
    fixed = ratepad.ReconnectPolicy.of("fixed")
    assert fixed.delay_for(0) == fixed.delay_for(7) == 1.0
    backoff = ratepad.ReconnectPolicy("backoff", delay=0.1, max_delay=1.0, attempts=5)
    assert [backoff.delay_for(i) for i in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, None]
    with pytest.raises(ratepad.LocalProtocolError):
        ratepad.ReconnectPolicy.of("sometimes")


def test_reconnect_backoff_gets_the_link_back() -> None:
    reasons: list[str] = []
    policy = ratepad.ReconnectPolicy("fixed", delay=0.05, max_delay=0.05)
    with ratepad.open(f"sim://L7?{FAST}", reconnect=policy, on_disconnect=reasons.append) as kp:
        kp.transport.close()
        kinds = []
        for event in kp.events(timeout=5):  # Lost, then the new connection's hello
            kinds.append(type(event))
            if isinstance(event, Connected) and Lost in kinds:
                break
        assert reasons and kp.connected
        kp.login("S1")


def test_logging_under_ratepad(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ratepad"), ratepad.open(f"sim://L8?{FAST}"):
        pass
    assert any(
        r.name == "ratepad.keypad" and "connected to keypad L8" in r.getMessage()
        for r in caplog.records
    )


def test_a_listener_cannot_block_the_reader() -> None:
    problems: list[BaseException] = []
    called = threading.Event()
    with ratepad.open(f"sim://L9?{FAST}") as kp:

        def listener(event: Event) -> None:
            try:
                kp.next_event(1)
            except ratepad.LocalProtocolError as exc:
                problems.append(exc)
            called.set()

        kp.add_listener(listener)
        ratepad.sim.get("L9").press(1)
        assert called.wait(10)
    assert problems
