"""The driver core's rules on virtual time: frames in, actions out, both clocks injected, no thread
and no sleep (the facades' shells are tested in test_driver*.py, test_aio.py)."""

from __future__ import annotations

import re

import pytest

from ratepad.driver import core
from ratepad.driver.core import (
    PROMPT_GRACE_S,
    STATUS_ECHO_MS,
    DriverCore,
    DriverState,
    ReconnectPolicy,
    Watchdog,
)
from ratepad.errors import DisconnectedError, IncompatiblePeerError, LocalProtocolError
from ratepad.events import CommandResult, Connected, Lost, Rating, Status
from ratepad.wire import codec

FLAGS = codec.HeaderFlags


class Clock:
    """Virtual time: ``ms`` for the host's wall clock, the same in seconds for the timer."""

    def __init__(self) -> None:
        self.ms = 1_000_000

    def wall(self) -> int:
        return self.ms

    def timer(self) -> float:
        return self.ms / 1000


def hello(boot: int = 7, version: int = codec.PROTOCOL_VERSION) -> codec.Hello:
    return codec.Hello(
        version, codec.SCHEMA_FINGERPRINT, 5, codec.Capabilities(0), 20000, 0, boot, 1234, "RP-1",
        "0.1.0", "pico", 0,
    )  # fmt: skip


def status(uptime_ms: int, presses: int = 0) -> codec.Status:
    return codec.Status(
        codec.DeviceState(0), codec.Faults(0), uptime_ms, 0, 0, presses, 0, 0, 0, 0, 0, "", 0
    )


def rating(seq: int, prompt_id: int = 0, boot: int = 7) -> codec.Rating:
    return codec.Rating(seq, boot, 2000, None, 4, 5, prompt_id, codec.RatingFlags(0), "S1")


def frame(message: codec.DeviceMessage, seq: int = 1, response: bool = False) -> bytes:
    return codec.encode(message, seq, FLAGS.RESPONSE if response else 0)


def kinds(actions: list[core.Action]) -> list[str]:
    """Actions by name; a Send of nothing is left out, a Deliver says what."""
    out = []
    for a in actions:
        if isinstance(a, core.Send):
            if a.data:
                out.append("Send")
        elif isinstance(a, core.Deliver):
            out.append(type(a.event).__name__)
        else:
            out.append(type(a).__name__)
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock()


def up(clock: Clock, **options: object) -> DriverCore:
    """A core whose link is up and whose keypad said hello."""
    d = DriverCore(url="sim://RP-1", clock=clock.wall, timer=clock.timer, **options)  # type: ignore[arg-type]
    assert kinds(d.link_up()) == ["Send"] and d.state is DriverState.GREETING
    assert kinds(d.receive(frame(hello(), response=True))) == ["Greeted", "Connected"]
    assert d.state.name == "UP" and d.connected
    return d


def test_the_state_table_names_the_states_there_are() -> None:
    table = (core.__doc__ or "").split("::", 1)[1].split("\n\n")[1]
    named = set(re.findall(r"^    ([A-Z]+) ", table, flags=re.MULTILINE))
    assert named <= {s.name for s in DriverState}  # the rest of the rows: "any", "any open"
    assert {"DOWN", "GREETING", "UP"} <= named


def test_its_own_hello_and_the_answer_are_one_connection(clock: Clock) -> None:
    d = up(clock)
    assert kinds(d.receive(frame(hello(), seq=2))) == ["Send"]  # its own hello: answered
    assert kinds(d.receive(frame(hello(), seq=3, response=True))) == ["Greeted"]  # not news


def test_a_hello_of_another_boot_is_a_restart(clock: Clock) -> None:
    d = up(clock)
    actions = d.receive(frame(hello(boot=8), response=True))
    assert kinds(actions) == ["Greeted", "Lost", "Disconnected", "Connected"]
    lost = next(a.event for a in actions if isinstance(a, core.Deliver))
    assert isinstance(lost, Lost) and lost.reason == "keypad restarted"


def test_a_status_echo_within_the_window_is_not_news(clock: Clock) -> None:
    d = up(clock)
    assert kinds(d.receive(frame(status(5000)))) == ["Status"]
    assert kinds(d.receive(frame(status(5000 + STATUS_ECHO_MS - 1)))) == []
    assert kinds(d.receive(frame(status(5000 + STATUS_ECHO_MS - 1 + STATUS_ECHO_MS)))) == ["Status"]
    assert kinds(d.receive(frame(status(20_000, presses=1)))) == ["Status"]  # changed: news
    assert isinstance(d.status, Status) and d.status.presses == 1


def test_a_claimed_prompt_takes_its_rating_once(clock: Clock) -> None:
    d = up(clock)
    prompt, message = d.new_prompt("S1", 30_000, claim=True, prompt_id=41)
    command, actions = d.request(message, "waiter")
    assert kinds(actions) == ["Send"] and command.waiter == "waiter"
    resolved = d.receive(frame(codec.Result(command.request_id, codec.ResultCode(0), "")))
    assert kinds(resolved) == ["Resolve"]
    result = resolved[-1]
    assert isinstance(result, core.Resolve) and isinstance(result.result, CommandResult)
    assert kinds(d.armed(prompt)) == [] and d.last_prompt_id == 41
    assert kinds(d.receive(frame(rating(1, prompt_id=41)))) == ["Answer"]  # not delivered
    assert d.prompt_state(prompt) == "answered" and isinstance(prompt.rating, Rating)


def test_an_unclaimed_prompt_and_ratings_of_no_prompt_are_delivered(clock: Clock) -> None:
    d = up(clock)
    prompt, _ = d.new_prompt("S1", 30_000, claim=False, prompt_id=5)
    d.armed(prompt)
    assert kinds(d.receive(frame(rating(1, prompt_id=5)))) == ["Answer", "Rating"]
    assert kinds(d.receive(frame(rating(2, prompt_id=99)))) == ["Rating"]


def test_prompts_are_superseded_cancelled_timed_out_and_forgotten(clock: Clock) -> None:
    d = up(clock)
    first, _ = d.new_prompt("S1", 10_000, prompt_id=1)
    d.armed(first)
    second, _ = d.new_prompt("S1", 10_000, prompt_id=2)
    ended = d.armed(second)
    assert kinds(ended) == ["PromptEnded"] and d.prompt_state(first) == "superseded"
    assert d.prompt_state(second) == "issued"
    clock.ms += 10_000
    assert d.prompt_state(second) == "timed_out"
    clock.ms += 1000
    assert kinds(d.receive(frame(rating(1, prompt_id=2)))) == ["Answer"]  # pressed in time
    third, _ = d.new_prompt("S1", 10_000, prompt_id=3)
    d.armed(third)
    assert kinds(d.cancelled(0)) == ["PromptEnded"] and d.prompt_state(third) == "cancelled"
    d.new_prompt("S1", 1000, prompt_id=4)
    clock.ms += int((1 + PROMPT_GRACE_S) * 1000) + 1
    assert kinds(d.receive(frame(rating(2, prompt_id=4)))) == ["Rating"]  # forgotten: no answer
    d.new_prompt("S1", 1000, prompt_id=5)
    d.new_prompt("S1", 1000, prompt_id=6)
    clock.ms += int((1 + PROMPT_GRACE_S) * 1000) + 1
    d.new_prompt("S1", 1000, prompt_id=7)
    assert set(d.prompts) == {7}  # the old ones do not pile up


def test_prompt_timeouts_in_seconds_are_checked() -> None:
    assert core.prompt_timeout_ms(0.0001) == 1  # never 0: the keypad reads 0 as no timeout
    for bad in (0, -1, float("nan"), float("inf"), True, 1e9):
        with pytest.raises(LocalProtocolError):
            core.prompt_timeout_ms(bad)


def test_commands_on_a_lost_link_fail_and_numbering_goes_on(clock: Clock) -> None:
    d = up(clock)
    command, _ = d.request(codec.Login("S1", ""))
    actions = d.link_lost("cable")
    assert kinds(actions) == ["Lost", "Disconnected", "CommandsFailed", "Reconnect"]
    assert d.state is DriverState.DOWN and not d.connected
    assert kinds(d.link_lost("again")) == ["Reconnect"]  # one Lost per outage
    with pytest.raises(DisconnectedError):
        d.request(codec.Login("S1", ""))
    d.link_up()
    d.receive(frame(hello(), response=True))
    again, _ = d.request(codec.Login("S1", ""))
    assert again.request_id > command.request_id  # an old answer is never taken for a new one
    # an answer to the old request is nobody's
    assert kinds(d.receive(frame(codec.Result(command.request_id, codec.ResultCode(0), "")))) == []


def test_reconnect_decisions_follow_the_policy(clock: Clock) -> None:
    policy = ReconnectPolicy("backoff", delay=0.1, max_delay=0.4, attempts=4)
    d = up(clock, reconnect=policy)
    delays: list[float | None] = []
    for _ in range(5):
        for a in d.link_lost("gone"):
            if isinstance(a, core.Reconnect):
                delays.append(a.delay)
            elif isinstance(a, core.Ended):
                delays.append(None)
    assert delays == [0.1, 0.2, 0.4, 0.4, None] and d.state is DriverState.FAILED
    off = up(clock, reconnect=ReconnectPolicy("off"))
    assert kinds(off.link_lost("gone"))[-1] == "Ended" and off.ended


def test_a_connection_resets_the_reconnect_attempts(clock: Clock) -> None:
    d = up(clock, reconnect=ReconnectPolicy("backoff", delay=0.1, max_delay=5))
    d.link_lost("a")
    d.link_lost("b")
    d.link_up()
    d.receive(frame(hello(), response=True))
    delays = [a.delay for a in d.link_lost("c") if isinstance(a, core.Reconnect)]
    assert delays == [0.1]


def test_the_watchdog_drops_a_silent_link_on_virtual_time(clock: Clock) -> None:
    d = up(clock, watchdog=Watchdog(hello_check_s=0.5, stall_s=3))
    assert d.next_deadline() == clock.timer() + 0.5
    clock.ms += 400
    assert "DropLink" not in kinds(d.poll())
    clock.ms += 200
    drop = [a for a in d.poll() if isinstance(a, core.DropLink)]
    assert [a.reason for a in drop] == ["hello without status"]
    d = up(clock, watchdog=Watchdog(hello_check_s=0.5, stall_s=3))
    d.receive(frame(status(5000)))  # the hello check is passed
    clock.ms += 2900
    assert "DropLink" not in kinds(d.poll())
    clock.ms += 200
    assert [a.reason for a in d.poll() if isinstance(a, core.DropLink)] == ["silent for 3 s"]


def test_another_protocol_version_ends_the_driver(clock: Clock) -> None:
    d = up(clock)
    actions = d.receive(frame(hello(version=codec.PROTOCOL_VERSION + 1), response=True))
    assert kinds(actions) == ["Lost", "Disconnected", "Ended"]
    assert isinstance(d.error, IncompatiblePeerError) and d.state is DriverState.FAILED
    with pytest.raises(IncompatiblePeerError):
        d.request(codec.Login("S1", ""))
    d.close()
    with pytest.raises(IncompatiblePeerError):  # still says why, after close
        d.link_up()


def test_close_ends_everything_waiting(clock: Clock) -> None:
    d = up(clock)
    prompt, message = d.new_prompt("S1", 30_000)
    command, _ = d.request(message)
    actions = d.close()
    assert kinds(actions) == ["Disconnected", "Ended"]
    ended = actions[-1]
    assert isinstance(ended, core.Ended) and ended.prompts == (prompt,)
    assert ended.commands == (command,) and d.prompt_state(prompt) == "cancelled"
    assert d.close() == [] and d.receive(frame(status(1))) == []


def test_time_sync_runs_on_the_injected_wall_clock(clock: Clock) -> None:
    d = up(clock)
    assert d.session is not None
    due = d.session.next_deadline()
    assert due is not None
    clock.ms = due - 1
    assert kinds(d.poll()) == []
    clock.ms = due
    sent = b"".join(a.data for a in d.poll() if isinstance(a, core.Send))
    assert codec.decode_frame(sent)[1] == codec.TimeSync(due)


def test_the_connected_event_is_the_keypads_hello(clock: Clock) -> None:
    d = up(clock)
    assert isinstance(d.info, Connected) and d.info.serial == "RP-1" and d.info.boot_id == 7
