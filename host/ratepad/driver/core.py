"""Every rule of the host's driver, sans-IO: calls in, actions out, time from injected clocks.

The thread facade (``ratepad.Keypad``), the asyncio facade (``ratepad.aio``), the agent's device
loop and the scenario runner (on virtual time) are shells around one ``DriverCore`` per keypad
link: they move bytes, wake waiters and sleep; what a byte, a hello, a rating or a lost link
*means* is decided here, once.

States (``DriverCore.state``) and what moves the core between them; the link session's own
states (``ratepad.wire.session``) are the third column::

    state     call / what the keypad says      -> state     session   actions
    DOWN      link_up()                           GREETING  SAYING    Send(host_hello, time)
    GREETING  keypad's hello, unsolicited         GREETING  SAYING    Send(host_hello) (answer it)
    GREETING  no answer for HELLO_RETRY_MS        GREETING  SAYING    Send(host_hello) (poll)
    GREETING  keypad's hello answering ours       UP        OPEN      Greeted, Deliver(Connected)
    UP        hello of the same boot              UP        OPEN      Greeted (one connection:
                                                                      its hello and the answer)
    UP        hello of another boot (restarted)   UP        OPEN      Deliver(Lost), Disconnected,
                                                                      Greeted, Deliver(Connected)
    UP        status like the last, < STATUS_ECHO_MS later            (none: an echo, not news)
    UP        status                              UP        OPEN      Deliver(Status)
    UP        rating answering a claimed prompt   UP        OPEN      Answer (not delivered)
    UP        any other rating, key, log line     UP        OPEN      Answer?, Deliver(event)
    UP        command result                      UP        OPEN      Resolve(command)
    UP        silent past the watchdog's limits   DOWN      CLOSED    DropLink(reason), as below
    any open  link_lost(reason)                   DOWN      CLOSED    Deliver(Lost) (once per
                                                                      outage), Disconnected,
                                                                      CommandsFailed,
                                                                      Reconnect(s) | Ended
    any open  another protocol version, fail()    FAILED    CLOSED    Deliver(Lost)?, Ended
    any       close()                             CLOSED    CLOSED    Disconnected?, Ended

``GREETING`` and ``UP`` are "open": a command may be sent (``request``); the thread and asyncio
facades refuse one before the keypad's first hello (``connected``). A new link continues the
request numbering of the old one, so that an answer to a request of the old link is never taken
for one of the new.

Prompts (one owner: ``DriverCore.prompts``): a prompt is ``issued`` when armed, ``answered`` by
the rating carrying its id (also when that rating comes after the deadline: pressed in time,
delivered late), ``superseded`` when another prompt is armed, ``cancelled`` when the keypad is
disarmed, and forgotten ``PROMPT_GRACE_S`` after its deadline. Its state reads ``timed_out``
once the deadline has passed without an answer.
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DisconnectedError, LocalProtocolError, RatepadError
from ..events import CommandResult, Connected, Event, Lost, Rating, Status
from ..wire import codec
from ..wire.session import Session, SessionState, wall_clock_ms

__all__ = [
    "MAX_PROMPT_MS",
    "OPEN_STATES",
    "PROMPT_GRACE_S",
    "STATUS_ECHO_MS",
    "Action",
    "Answer",
    "Command",
    "CommandsFailed",
    "Deliver",
    "Disconnected",
    "DriverCore",
    "DriverState",
    "DropLink",
    "Ended",
    "Greeted",
    "Prompt",
    "PromptEnded",
    "Reconnect",
    "ReconnectPolicy",
    "Resolve",
    "Send",
    "Watchdog",
    "prompt_timeout_ms",
]

STATUS_ECHO_MS = 500  # a status like the last within this much uptime answers our hello/sync
PROMPT_GRACE_S = 60.0  # a rating may still answer a prompt this long after its timeout
MAX_PROMPT_MS = 0x1FFFFFFF  # the firmware's limit (ticks arithmetic, 6.2 days)


class DriverState(enum.Enum):
    DOWN = "down"  # no link: not opened yet, or lost (a reconnect may follow)
    GREETING = "greeting"  # link open, host_hello said, no hello from the keypad on it yet
    UP = "up"  # the keypad said hello on this link: ratings flow
    FAILED = "failed"  # the keypad speaks another protocol version, or reconnecting gave up
    CLOSED = "closed"  # closed on purpose


OPEN_STATES = frozenset({DriverState.GREETING, DriverState.UP})
_OPEN = OPEN_STATES


# -- reconnect decisions --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a lost link is got back.

    ``mode``: ``off`` (a lost link ends the driver), ``fixed`` (try again every ``delay`` s) or
    ``backoff`` (``delay`` doubling up to ``max_delay``). ``attempts`` bounds the tries per
    outage (0: no bound).
    """

    mode: Literal["off", "fixed", "backoff"] = "backoff"
    delay: float = 0.1
    max_delay: float = 5.0
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("off", "fixed", "backoff"):
            raise LocalProtocolError(f"reconnect mode {self.mode!r}: use off, fixed or backoff")
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise LocalProtocolError("reconnect delay must be a finite number >= 0")
        if not (math.isfinite(self.max_delay) and self.max_delay >= self.delay):
            raise LocalProtocolError("reconnect max_delay must be finite and >= delay")

    @classmethod
    def of(cls, value: ReconnectPolicy | str) -> ReconnectPolicy:
        """``value`` itself, or the policy named ``off``, ``fixed`` or ``backoff``."""
        if isinstance(value, ReconnectPolicy):
            return value
        if value == "fixed":
            return cls("fixed", delay=1.0, max_delay=1.0)
        if value == "off":
            return cls("off")
        if value == "backoff":
            return cls("backoff")
        raise LocalProtocolError(f"reconnect {value!r}: use off, fixed or backoff")

    def delay_for(self, attempt: int) -> float | None:
        """Seconds to wait before try number ``attempt`` (0-based), or None to give up."""
        if self.mode == "off" or (self.attempts and attempt >= self.attempts):
            return None
        if self.mode == "fixed":
            return self.delay
        return float(min(self.delay * 2 ** min(attempt, 30), self.max_delay))


@dataclass(frozen=True, slots=True)
class Watchdog:
    """A link that looks up but is not: a keypad that said hello and then no status within
    ``hello_check_s``, or that was silent for ``stall_s`` (a keypad that re-enumerated on a link
    that never reported an error waits for a host_hello the host will only say on a new link).
    """

    hello_check_s: float
    stall_s: float


# -- records the core owns -------------------------------------------------------------------
@dataclass(eq=False)
class Prompt:
    """A prompt armed (or being armed) on the keypad. ``waiter``: the shell's, untouched here."""

    prompt_id: int
    staff: str
    timeout_s: float
    deadline: float  # on the core's timer
    claim: bool
    waiter: Any = None
    ended: str = ""  # "", answered, cancelled, superseded
    rating: Rating | None = None


@dataclass(eq=False)
class Command:
    """A command sent and not answered yet. ``waiter``: the shell's, untouched here."""

    request_id: int
    message: codec.HostMessage
    waiter: Any = None


# -- actions ------------------------------------------------------------------------------------
# (plain slotted records, read-only by convention: a frozen dataclass costs a fleet run ~5 %)
@dataclass(slots=True)
class Send:
    """Write these bytes to the link (in the order given)."""

    data: bytes


@dataclass(slots=True)
class Deliver:
    """An event for ``events()`` and the listeners."""

    event: Event


@dataclass(slots=True)
class Greeted:
    """The keypad said hello (on every hello, also the ones that are not news)."""

    info: Connected


@dataclass(slots=True)
class Resolve:
    """A command's answer came."""

    command: Command
    result: CommandResult


@dataclass(slots=True)
class CommandsFailed:
    """These commands will never be answered (the link they went out on is gone)."""

    commands: tuple[Command, ...]
    reason: str


@dataclass(slots=True)
class Answer:
    """A rating answered this prompt."""

    prompt: Prompt
    rating: Rating


@dataclass(slots=True)
class PromptEnded:
    """A prompt ended without a rating (``prompt.ended``: cancelled or superseded)."""

    prompt: Prompt


@dataclass(slots=True)
class Disconnected:
    """A connection ended (for ``on_disconnect``)."""

    reason: str


@dataclass(slots=True)
class DropLink:
    """Close the link (the watchdog: it looks up and is not); call ``link_lost`` after."""

    reason: str


@dataclass(slots=True)
class Reconnect:
    """Open the link again after ``delay`` s, then call ``link_up``."""

    delay: float
    attempt: int


@dataclass(slots=True)
class Ended:
    """The driver cannot go on: every waiter gets ``error``; blocked prompts and commands too."""

    error: BaseException
    prompts: tuple[Prompt, ...]
    commands: tuple[Command, ...]


Action = (
    Send
    | Deliver
    | Greeted
    | Resolve
    | CommandsFailed
    | Answer
    | PromptEnded
    | Disconnected
    | DropLink
    | Reconnect
    | Ended
)


def prompt_timeout_ms(timeout: float) -> int:
    """A prompt's timeout given in seconds, as the keypad takes it (checked)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise LocalProtocolError("timeout must be a positive number of seconds")
    if not math.isfinite(timeout) or timeout <= 0:
        raise LocalProtocolError("timeout must be a positive number of seconds")
    # never round down to 0 ms: the keypad reads 0 as "no timeout"
    timeout_ms = max(1, math.ceil(timeout * 1000))
    if timeout_ms > MAX_PROMPT_MS:
        raise LocalProtocolError(f"timeout must be at most {MAX_PROMPT_MS / 1000:g} s")
    return timeout_ms


def _same_status(a: Status, b: Status) -> bool:
    return (a.state, a.faults, a.journal_used, a.unacked, a.presses, a.prompt_id) == (
        b.state,
        b.faults,
        b.journal_used,
        b.unacked,
        b.presses,
        b.prompt_id,
    )


@dataclass
class _Link:
    """What is known about the current connection (reset on every new link)."""

    boot_id: int | None = None  # the keypad's boot id once it said hello
    status_seen: bool = False  # a Status was delivered on this connection
    hello_at: float | None = None  # watchdog: hello seen, no status or rating since
    heard_at: float = 0.0  # watchdog: the keypad's last word


@dataclass
class DriverCore:
    """The driver of one keypad link. Not thread-safe: the shell serialises calls.

    ``clock``: the host's wall clock in ms (the keypad's time is synced to it); ``timer``: a
    monotonic clock in seconds (prompt deadlines, the watchdog). Inject both for virtual time.
    """

    url: str = ""
    clock: Callable[[], int] = wall_clock_ms
    timer: Callable[[], float] = time.monotonic
    software: str = "ratepad"
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    watchdog: Watchdog | None = None
    state: DriverState = DriverState.DOWN
    session: Session | None = None
    info: Connected | None = None  # the keypad's last hello (kept across links)
    status: Status | None = None  # its last status (kept across links)
    prompts: dict[int, Prompt] = field(default_factory=dict)
    last_prompt_id: int = 0  # the prompt armed last (what a cancel of "whatever" ends)
    error: BaseException | None = None
    bad_spans: int = 0  # undecodable spans of the links before this one
    _commands: dict[int, Command] = field(default_factory=dict)
    _link: _Link = field(default_factory=_Link)
    _connected: bool = False  # a Connected was delivered and no Lost since
    _attempt: int = 0  # reconnect tries in this outage
    _forget_at: float = math.inf  # timer time after which a prompt may be forgotten
    _prompt_ids: Any = field(
        default_factory=lambda: itertools.count(int.from_bytes(os.urandom(3), "big") + 1)
    )

    # -- state ----------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """The keypad said hello and the link was not lost since."""
        return self._connected and self.state in _OPEN

    @property
    def ended(self) -> bool:
        return self.state in (DriverState.FAILED, DriverState.CLOSED)

    def prompt_state(self, prompt: Prompt) -> str:
        """issued, answered, timed_out, cancelled or superseded."""
        if prompt.rating is not None:
            return "answered"
        if prompt.ended:
            return prompt.ended
        if self.ended:
            return "cancelled"
        return "timed_out" if self.timer() >= prompt.deadline else "issued"

    def next_deadline(self) -> float | None:
        """Timer time (s) at which ``poll`` has something to do, or None (the session's own
        duties are on the wall clock: ``session.next_deadline()``)."""
        w, link = self.watchdog, self._link
        if w is None or self.state is not DriverState.UP:
            return None
        due = link.heard_at + w.stall_s
        if link.hello_at is not None:
            due = min(due, link.hello_at + w.hello_check_s)
        return due

    # -- the link -------------------------------------------------------------------------------
    def link_up(self) -> list[Action]:
        """A link to the keypad is open (first, or again after a loss): say hello."""
        self._check_not_ended("open a link")
        old = self.session
        self.session = Session(clock=self.clock, software=self.software)
        if old is not None:
            self.session.continue_from(old)
        self.state = DriverState.GREETING
        self._link = _Link(heard_at=self.timer())
        return [Send(self.session.open())]

    def link_lost(self, reason: str) -> list[Action]:
        """The link is gone (an error, a close, a cable): one ``Lost`` per outage, commands on
        it fail, and the reconnect policy decides what comes next."""
        if self.ended:
            return []
        actions = self._drop(reason)
        delay = self.reconnect.delay_for(self._attempt)
        if delay is None:
            actions += self._end(DisconnectedError(f"{self.url}: link lost: {reason}"))
            return actions
        self._attempt += 1
        actions.append(Reconnect(delay, self._attempt))
        return actions

    def _drop(self, reason: str) -> list[Action]:
        actions: list[Action] = []
        if self.session is not None:
            self.bad_spans += self.session.bad_spans
            if self.session.state is not SessionState.CLOSED:
                self.session.close()
        self.state = DriverState.DOWN
        if self._connected:
            self._connected = False
            actions += [Deliver(Lost(self._serial(), reason)), Disconnected(reason)]
        if self._commands:
            commands, self._commands = tuple(self._commands.values()), {}
            actions.append(CommandsFailed(commands, f"{self.url}: link lost: {reason}"))
        return actions

    def close(self) -> list[Action]:
        """Closed on purpose: everything waiting ends with DisconnectedError."""
        if self.state is DriverState.CLOSED:
            return []
        was_connected = self.connected
        if self.session is not None and self.session.state is not SessionState.CLOSED:
            self.bad_spans += self.session.bad_spans
            self.session.close()
        actions = self._end(DisconnectedError(f"{self.url}: closed"), DriverState.CLOSED)
        self._connected = False
        if was_connected:
            actions.insert(0, Disconnected("closed"))
        return actions

    def _end(self, error: BaseException, state: DriverState = DriverState.FAILED) -> list[Action]:
        self.state = state
        if self.error is None:
            self.error = error
        prompts, self.prompts = tuple(self.prompts.values()), {}
        commands, self._commands = tuple(self._commands.values()), {}
        return [Ended(error, prompts, commands)]

    def _check_not_ended(self, what: str) -> None:
        if self.error is not None and not isinstance(self.error, DisconnectedError):
            raise self.error  # an incompatible keypad: say so, also after close()
        if self.state is DriverState.CLOSED:
            raise DisconnectedError(f"{self.url}: closed")
        if self.error is not None:
            raise self.error
        if self.state is DriverState.FAILED:
            raise DisconnectedError(f"{self.url}: cannot {what}: the driver has ended")

    def _serial(self) -> str:
        return self.info.serial if self.info else ""

    # -- bytes in, duties -----------------------------------------------------------------------
    def receive(self, data: bytes) -> list[Action]:
        """Bytes from the keypad."""
        if self.state not in _OPEN or self.session is None:
            return []  # what arrives after a loss or close belongs to no connection
        try:
            reply = self.session.receive_data(data)
        except RatepadError as exc:  # another protocol version: nothing more to do
            return self.fail(exc)
        actions = self._dispatch()
        if reply:
            actions.insert(0, Send(reply))
        return actions

    def fail(self, error: RatepadError) -> list[Action]:
        """The link cannot go on and there is nothing to reconnect to (another protocol
        version, the end of a replayed capture): one ``Lost``, then the driver ends."""
        if self.ended:
            return []
        return self._drop(str(error)) + self._end(error)

    def poll(self) -> list[Action]:
        """Periodic duties: the session's (hello retries, time sync) and the watchdog."""
        session = self.session
        if session is None or self.state not in _OPEN:
            return []
        due = session.poll()
        actions: list[Action] = [Send(due)] if due else []
        if self.watchdog is not None:
            reason = self._stalled()
            if reason:
                actions.append(DropLink(reason))
        return actions

    def _forget_prompts(self) -> None:
        """Forget the prompts nobody can answer any more (checked when a prompt is made, so
        that they do not pile up; a late rating finds an old prompt forgotten anyway)."""
        now = self.timer()
        for pid, p in list(self.prompts.items()):
            if now > p.deadline + PROMPT_GRACE_S:
                del self.prompts[pid]
        self._forget_at = min((p.deadline for p in self.prompts.values()), default=math.inf)
        self._forget_at += PROMPT_GRACE_S

    def _stalled(self) -> str:
        w, link = self.watchdog, self._link
        if w is None or self.state is not DriverState.UP:
            return ""
        now = self.timer()
        if link.hello_at is not None and now - link.hello_at > w.hello_check_s:
            return "hello without status"
        if now - link.heard_at > w.stall_s:
            return f"silent for {w.stall_s:g} s"
        return ""

    def _dispatch(self) -> list[Action]:
        session = self.session
        assert session is not None
        actions: list[Action] = []
        event = session.next_event()
        if event is None:
            return actions
        link = self._link
        link.heard_at = self.timer()
        while event is not None:
            deliver = True
            if isinstance(event, Rating):
                link.hello_at = None
                if event.prompt_id:
                    prompt = self.prompts.pop(event.prompt_id, None)
                    if prompt is not None and link.heard_at > prompt.deadline + PROMPT_GRACE_S:
                        prompt = None  # nobody can wait for it any more: forgotten
                    if prompt is not None:
                        prompt.rating = event
                        actions.append(Answer(prompt, event))
                        deliver = not prompt.claim  # claimed: delivered once, to the prompt
            elif isinstance(event, Status):
                link.hello_at = None
                previous, self.status = self.status, event
                if (
                    link.status_seen
                    and previous is not None
                    and _same_status(previous, event)
                    and event.uptime_ms - previous.uptime_ms < STATUS_ECHO_MS
                ):
                    deliver = False  # the answer to a repeated hello / time sync: not news
                link.status_seen = True
            elif isinstance(event, CommandResult):
                command = self._commands.pop(event.request_id, None)
                if command is not None:
                    actions.append(Resolve(command, event))
                deliver = False
            elif isinstance(event, Connected):
                actions += self._on_hello(event)
                deliver = False
                link = self._link
            if deliver:
                actions.append(Deliver(event))
            event = session.next_event()
        return actions

    def _on_hello(self, event: Connected) -> list[Action]:
        self.info = event
        self.state = DriverState.UP
        link = self._link
        actions: list[Action] = [Greeted(event)]
        if self._connected and link.boot_id == event.boot_id:
            return actions  # the same connection said hello twice (its own and the answer)
        if self._connected:  # rebooted without a link error: a new connection
            reason = "keypad restarted"
            actions += [Deliver(Lost(event.serial, reason)), Disconnected(reason)]
        self._connected = True
        self._attempt = 0
        link.boot_id = event.boot_id
        link.status_seen = False
        link.hello_at = self.timer()
        actions.append(Deliver(event))
        return actions

    # -- commands -------------------------------------------------------------------------------
    def request(
        self, message: codec.HostMessage, waiter: Any = None
    ) -> tuple[Command, list[Action]]:
        """Send a command; its ``Resolve`` (or ``CommandsFailed``) comes later."""
        self._check_not_ended("send a command")
        if self.state not in _OPEN or self.session is None:
            raise DisconnectedError(f"{self.url}: not connected")
        request_id, frame = self.session.request(message)
        command = Command(request_id, message, waiter)
        self._commands[request_id] = command
        return command, [Send(frame)]

    def forget(self, command: Command) -> None:
        """The shell gave up on ``command`` (its frame could not be written, or a timeout)."""
        self._commands.pop(command.request_id, None)

    def confirm(self, rating: Rating) -> list[Action]:
        """The rating is stored durably: ACK it (nothing to send on a link that is gone)."""
        if self.state not in _OPEN or self.session is None:
            return []
        ack = self.session.confirm(rating)
        return [Send(ack)] if ack else []

    # -- prompts --------------------------------------------------------------------------------
    def new_prompt(
        self,
        staff: str,
        timeout_ms: int,
        claim: bool = True,
        prompt_id: int | None = None,
        waiter: Any = None,
    ) -> tuple[Prompt, codec.Prompt]:
        """A prompt, recorded, and the command that arms it (send it with ``request``; call
        ``armed`` once the keypad said yes, ``forget_prompt`` if not). ``timeout_ms`` as the
        keypad takes it (0: none; ``prompt_timeout_ms`` makes it from seconds)."""
        if isinstance(timeout_ms, bool) or not 0 <= timeout_ms <= 0xFFFFFFFF:
            raise LocalProtocolError("timeout_ms must be 0..4294967295")
        if prompt_id is None:
            prompt_id = next(self._prompt_ids) & 0xFFFFFFFF or 1
        elif isinstance(prompt_id, bool) or not 1 <= prompt_id <= 0xFFFFFFFF:
            raise LocalProtocolError("prompt_id must be 1..4294967295")
        timeout_s = timeout_ms / 1000 if timeout_ms else math.inf
        now = self.timer()
        if now > self._forget_at:
            self._forget_prompts()
        prompt = Prompt(prompt_id, staff, timeout_s, now + timeout_s, claim, waiter)
        self.prompts[prompt_id] = prompt
        self._forget_at = min(self._forget_at, prompt.deadline + PROMPT_GRACE_S)
        return prompt, codec.Prompt(prompt_id, timeout_ms, staff)

    def armed(self, prompt: Prompt) -> list[Action]:
        """The keypad armed ``prompt``: the prompts armed before it are superseded."""
        self.last_prompt_id = prompt.prompt_id
        actions: list[Action] = []
        for other in list(self.prompts.values()):
            if other is not prompt and not other.ended and other.rating is None:
                del self.prompts[other.prompt_id]
                other.ended = "superseded"
                actions.append(PromptEnded(other))
        return actions

    def forget_prompt(self, prompt: Prompt) -> None:
        """Nobody waits for ``prompt`` any more (not armed, or its wait timed out)."""
        if self.prompts.get(prompt.prompt_id) is prompt:
            del self.prompts[prompt.prompt_id]

    def cancelled(self, prompt_id: int) -> list[Action]:
        """The keypad disarmed ``prompt_id`` (0: whatever was armed)."""
        ids = [prompt_id] if prompt_id else list(self.prompts)
        actions: list[Action] = []
        for pid in ids:
            prompt = self.prompts.pop(pid, None)
            if prompt is not None:
                prompt.ended = "cancelled"
                actions.append(PromptEnded(prompt))
        return actions
