"""Driver API over simulated keypads: session rules, Keypad facade, asyncio facade, TCP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import ratepad
import ratepad.aio
from ratepad.events import Connected, Lost, Rating
from ratepad.sim.serve import serve
from ratepad.wire import codec
from ratepad.wire.session import Session

FAST = "debounce_ms=5&chord_ms=20&repeat_guard_ms=0&thanks_ms=200"


@pytest.fixture(autouse=True)
def fresh_keypads() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


def later(seconds: float, fn: object) -> None:
    threading.Timer(seconds, fn).start()  # type: ignore[arg-type]


def test_prompt_returns_the_rating_and_confirm_acks_it() -> None:
    with ratepad.open(f"sim://D1?{FAST}") as kp:
        assert isinstance(kp.info, Connected) and kp.info.serial == "D1"
        later(0.1, lambda: ratepad.sim.get("D1").press(3, bounce_ms=2))
        rating = kp.prompt("S001", timeout=5)
        assert (rating.score, rating.staff_id, rating.prompted) == (3, "S001", True)
        assert rating.time_exact
        assert abs(rating.time_ms - time.time() * 1000) < 5000
        journal = ratepad.sim.get("D1").keypad.core.journal
        assert journal.unacked() == 1  # not ACKed before the consumer confirms
        kp.confirm(rating)
        kp.get_config("debounce")  # answered after the ACK before it (one ordered link)
        assert journal.unacked() == 0


def test_non_blocking_prompt_and_timeout() -> None:
    with ratepad.open(f"sim://D2?{FAST}") as kp:
        handle = kp.start_prompt("S002", timeout=5)
        assert not handle.answered
        ratepad.sim.get("D2").press(5)
        assert handle.wait().score == 5
        with pytest.raises(ratepad.RatepadTimeout) as info:
            kp.prompt("S002", timeout=0.3)
        assert isinstance(info.value, TimeoutError)


def test_config_and_command_errors() -> None:
    with ratepad.open(f"sim://D3?{FAST}") as kp:
        kp.set_config("debounce", "eager")
        assert kp.get_config("debounce") == {"debounce": "eager"}
        assert len(kp.get_config()) >= 10
        with pytest.raises(ratepad.CommandError, match="bad_value"):
            kp.set_config("debounce_ms", 9999)
        with pytest.raises(ratepad.CommandError, match="not_found"):
            kp.cancel_prompt(12345)
        kp.login("S007", "Li Lei")
        kp.logout("S007")
        assert kp.self_test().ok


def test_unprompted_press_arrives_as_an_event() -> None:
    with ratepad.open(f"sim://D4?{FAST}") as kp:
        ratepad.sim.get("D4").press(1)
        ratings = [e for e in kp.events(timeout=1.0) if isinstance(e, Rating)]
        assert len(ratings) == 1
        assert not ratings[0].prompted and "unprompted" in ratings[0].flag_names


def test_session_acks_only_contiguous_runs() -> None:
    kp = ratepad.sim.get(
        "D5", {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
    )
    kp.connect()
    s = Session()
    kp.write(s.open())
    ratings: list[Rating] = []
    for key in (1, 2, 3):
        kp.press(key)
        time.sleep(0.4)
    end = time.monotonic() + 3
    while len({r.journal_seq for r in ratings}) < 3 and time.monotonic() < end:
        data = kp.read(0.1)
        kp.write(s.receive_data(data))
        while (e := s.next_event()) is not None:
            if isinstance(e, Rating):
                ratings.append(e)
    by_seq = {r.journal_seq: r for r in ratings}
    assert sorted(by_seq) == [1, 2, 3]
    assert s.confirm(by_seq[2]) == b""  # 1 not stored yet: nothing may be ACKed
    ack = s.confirm(by_seq[1])
    assert codec.decode_frame(ack)[1] == codec.Ack(2)
    assert codec.decode_frame(s.confirm(by_seq[3]))[1] == codec.Ack(3)


def test_incompatible_protocol_version_is_a_clear_error() -> None:
    s = Session()
    hello = codec.Hello(9, 0, 5, codec.Capabilities(0), 1, 0, 1, 0, "X", "9.0", "pico", 0)
    with pytest.raises(ratepad.IncompatiblePeerError, match="protocol version 9"):
        s.receive_data(codec.encode(hello))


def test_tcp_transport_to_a_served_keypad() -> None:
    kp = ratepad.sim.get("T1", {"debounce_ms": 5, "chord_ms": 20})
    server = serve(("127.0.0.1", 0), lambda i: kp if i == "T1" else None)
    try:
        with ratepad.open(f"{server.url_base}/T1") as remote:
            later(0.1, lambda: kp.press(4))
            assert remote.prompt("S1", timeout=5).score == 4
        with pytest.raises(ratepad.DeviceNotFoundError):
            ratepad.open(f"{server.url_base}/NOPE")
    finally:
        server.shutdown()


def test_asyncio_facade() -> None:
    async def main() -> int:
        async with await ratepad.aio.open(f"sim://A1?{FAST}") as kp:
            later(0.1, lambda: ratepad.sim.get("A1").press(2))
            rating = await kp.prompt("S9", timeout=5)
            await kp.confirm(rating)
            return rating.score

    assert asyncio.run(main()) == 2


def test_unknown_scheme_and_bad_url() -> None:
    with pytest.raises(ratepad.LocalProtocolError, match="unknown transport"):
        ratepad.open("bogus://x")
    with pytest.raises(ratepad.LocalProtocolError):
        ratepad.open("no-scheme")


def test_keypad_power_cycle_without_a_link_error_reopens_the_session() -> None:
    with ratepad.open(f"sim://PC1?{FAST}") as kp:
        sim = ratepad.sim.get("PC1")
        sim.power_cycle()  # the keypad reboots; the in-process link raised nothing
        kinds = []
        for event in kp.events(timeout=5):  # the restart, seen in its new hello
            kinds.append(type(event))
            if isinstance(event, Connected) and Lost in kinds:
                break
        assert sim.keypad.core.session  # the host answered its hello with host_hello
        handle = kp.start_prompt("S1", timeout=5)
        sim.press(2)
        assert handle.wait().score == 2


def test_nothing_is_filed_before_the_keypad_is_known() -> None:
    s = Session(clock=lambda: 1_800_000_000_000)
    s.open()
    rating = codec.Rating(1, 1, 500, None, 4, 5, 0, codec.RatingFlags.UNPROMPTED, "")
    # the keypad's hello was lost: its rating must not be filed (or ACKed) under no serial
    assert s.receive_data(codec.encode(rating, 5)) == b""
    assert s.next_event() is None
    hello = codec.Hello(
        1,
        codec.SCHEMA_FINGERPRINT,
        5,
        codec.Capabilities(0),
        100,
        1,
        1,
        900,
        "K7",
        "0.1.0",
        "sim",
        0,
    )
    s.receive_data(codec.encode(hello, 6, codec.HeaderFlags.RESPONSE))
    assert isinstance(s.next_event(), Connected)
    s.receive_data(codec.encode(rating, 7, codec.HeaderFlags.RETRANSMIT))
    event = s.next_event()
    assert isinstance(event, Rating) and event.serial == "K7" and event.journal_seq == 1
