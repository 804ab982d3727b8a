"""The host side of a keypad link, sans-IO: bytes in, events out, bytes to send back.

One ``Session`` per connection, shared by every transport::

    session = Session(clock=wall_clock_ms)
    transport.write(session.open())              # host_hello
    transport.write(session.receive_data(data))  # feed bytes; replies (time sync) come back
    while (event := session.next_event()) is not None: ...
    transport.write(session.confirm(rating))     # after the rating is stored: ACK

Rules kept here:
* ratings are ACKed only once confirmed, and cumulatively only over a contiguous run from the
  keypad's own ACK point (``acked_seq`` in its hello), so a rating lost on the way is never
  ACKed by a later one;
* a peer with another protocol version raises ``IncompatiblePeerError``; a schema fingerprint
  mismatch is reported on ``Connected.schema_matches`` (same version: compatible by the evolution
  rules, fields may be missing or extra);
* time: the keypad is time-synced at hello and every ``sync_interval_ms``; ratings of a boot the
  host has seen get a wall-clock time from the boot's uptime when they carry no epoch.

States (``Session.state``), and what moves the session between them::

    state      open()     hello answering ours   unsolicited hello   bad version   close()
    IDLE       SAYING     -                      SAYING (we answer)  FAILED        CLOSED
    SAYING     SAYING     OPEN                   SAYING (we answer*) FAILED        CLOSED
    OPEN       SAYING     OPEN                   SAYING (we answer)  FAILED        CLOSED
    FAILED     refused    -                      -                   -             CLOSED
    CLOSED     refused    -                      -                   -             CLOSED

(*) unless the keypad was up before our host_hello: it answers that one.

``SAYING``: host_hello sent and not answered yet (it is repeated every ``HELLO_RETRY_MS``). What
each call may do in each state is the table ``ALLOWED`` below; anything else raises
``LocalProtocolError`` (the caller's bug). Nothing the keypad says is filed before its first
hello: without it the session does not know whose ratings they are, so they stay unACKed in the
keypad's journal and come again.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import IncompatiblePeerError, LocalProtocolError
from ..events import (
    CommandResult,
    Connected,
    Event,
    KeyEvent,
    LogLine,
    Rating,
    Status,
    UnknownMessage,
)
from . import codec
from .stream import BadSpan, Frame, StreamDecoder

__all__ = ["ALLOWED", "Session", "SessionState", "wall_clock_ms"]

HELLO_RETRY_MS = 1000  # say host_hello again after this long without an answer


class SessionState(enum.Enum):
    IDLE = "idle"  # nothing said yet
    SAYING = "saying"  # host_hello sent, not answered yet
    OPEN = "open"  # the keypad answered: ratings flow, commands may be sent
    FAILED = "failed"  # the keypad speaks another protocol version: nothing more to do
    CLOSED = "closed"  # the link is gone; a new link gets a new Session


_IDLE, _SAYING, _OPEN = SessionState.IDLE, SessionState.SAYING, SessionState.OPEN
_FAILED, _CLOSED = SessionState.FAILED, SessionState.CLOSED

ALLOWED: dict[str, frozenset[SessionState]] = {
    "open": frozenset({_IDLE, _SAYING, _OPEN}),
    "receive_data": frozenset({_IDLE, _SAYING, _OPEN}),
    "poll": frozenset({_IDLE, _SAYING, _OPEN, _FAILED}),  # nothing to do unless saying/open
    "time_sync": frozenset({_SAYING, _OPEN}),
    # A keypad that rebooted is re-greeted (SAYING) while its hello is already known:
    # commands and ACKs for it stay possible then.
    "request": frozenset({_SAYING, _OPEN}),
    "confirm": frozenset({_SAYING, _OPEN}),
    "close": frozenset(SessionState),
}
"""The calls each state allows; the rest raise LocalProtocolError."""

_E = TypeVar("_E")


_INIT_FIELDS: dict[Any, tuple[tuple[str, bool], ...]] = {}


def _init_fields(cls: Any) -> tuple[tuple[str, bool], ...]:
    """An event class's constructor fields, each with whether it must be given (per class,
    once: events are built for every frame)."""
    found = _INIT_FIELDS.get(cls)
    if found is None:
        found = _INIT_FIELDS[cls] = tuple(
            (f.name, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)
            if f.init
        )
    return found


def _event(cls: type[_E], source: Any, /, **given: Any) -> _E:
    """An event built from a message by field name: every field of the event that ``given`` does
    not supply comes from the message field of the same name (a missing one is a bug, and
    raises at once instead of shifting values by position)."""
    fields = source._asdict()
    for name, required in _init_fields(cls):
        if name not in given:
            if name in fields:
                given[name] = fields[name]
            elif required:
                raise TypeError(f"{cls.__name__}.{name} has no field in {type(source)}")
    return cls(**given)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Session:
    """Sans-IO host side of one keypad link."""

    def __init__(
        self,
        clock: Callable[[], int] = wall_clock_ms,
        software: str = "ratepad",
        sync_interval_ms: int = 600_000,
    ) -> None:
        self.clock = clock
        self.software = software[:32]
        self.sync_interval_ms = sync_interval_ms
        self.hello: Connected | None = None
        self.bad_spans = 0
        self._decoder = StreamDecoder()
        self._events: deque[Event] = deque()
        self._seq = 0
        self._pending_values: dict[int, dict[str, str]] = {}
        self._acked = 0  # highest seq ACKed (contiguous from the keypad's own ACK point)
        self._confirmed: set[int] = set()
        self._boot_anchor: dict[int, int] = {}  # boot id -> wall time of uptime 0
        self._last_sync = 0
        self._opened_at: int | None = None  # when host_hello was last sent
        self.state = SessionState.IDLE

    def _check(self, call: str) -> None:
        if self.state not in ALLOWED[call]:
            raise LocalProtocolError(f"Session.{call}() is not allowed in state {self.state.value}")

    def close(self) -> None:
        """The link is gone: the session refuses everything from now on."""
        self._check("close")
        self.state = SessionState.CLOSED
        self._opened_at = None

    def continue_from(self, previous: Session) -> None:
        """Number frames on from ``previous`` (a new link to the same keypad)."""
        self._seq = previous._seq

    # -- frames out ---------------------------------------------------------------------------
    def _frame(self, message: codec.HostMessage) -> tuple[int, bytes]:
        self._seq = (self._seq + 1) & 0xFFFF or 1
        return self._seq, codec.encode(message, self._seq)

    def open(self) -> bytes:
        """The first bytes to send on a new link: host_hello, and the time right behind it, so
        the keypad knows the time before it sends the ratings it holds."""
        self._check("open")
        self.state = SessionState.SAYING
        hello = codec.HostHello(codec.PROTOCOL_VERSION, codec.SCHEMA_FINGERPRINT, self.software)
        self._opened_at = self.clock()
        return self._frame(hello)[1] + self.time_sync()

    def time_sync(self) -> bytes:
        """A time_sync frame with the host's time now."""
        self._check("time_sync")
        self._last_sync = self.clock()
        return self._frame(codec.TimeSync(self._last_sync))[1]

    def request(self, message: codec.HostMessage) -> tuple[int, bytes]:
        """(request id, frame) for a command; its CommandResult carries the same id."""
        self._check("request")
        if isinstance(message, codec.Ack | codec.TimeSync | codec.HostHello):
            raise LocalProtocolError(f"{message.type_name} is not a command")
        return self._frame(message)

    def confirm(self, rating: Rating) -> bytes:
        """The consumer stored ``rating``: returns the ACK to send (b"" if none is due yet)."""
        self._check("confirm")
        if rating.journal_seq <= self._acked:
            return self._frame(codec.Ack(self._acked))[1]  # a retransmission: ACK again
        self._confirmed.add(rating.journal_seq)
        moved = False
        while self._acked + 1 in self._confirmed:
            self._acked += 1
            self._confirmed.discard(self._acked)
            moved = True
        return self._frame(codec.Ack(self._acked))[1] if moved else b""

    def next_deadline(self) -> int | None:
        """Host clock time at which ``poll`` will have something to do, or None."""
        if self._opened_at is not None:
            return self._opened_at + HELLO_RETRY_MS
        if self.hello is None:
            return None
        return self._last_sync + self.sync_interval_ms

    def poll(self) -> bytes:
        """Periodic duties: say host_hello again while the keypad has not answered (a frame
        lost on the way), and keep the keypad's clock synced. Returns bytes to send."""
        self._check("poll")
        if self.state is SessionState.FAILED:
            return b""
        if self._opened_at is not None:  # host_hello not answered yet
            if self.clock() - self._opened_at >= HELLO_RETRY_MS:
                return self.open()
            return b""
        if self.hello is None:
            return b""
        since = self.clock() - self._last_sync
        # due, or the host's clock stepped back (a jump forward is "due" by itself)
        if self.hello is not None and (since >= self.sync_interval_ms or since < 0):
            return self.time_sync()
        return b""

    # -- bytes in -----------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> bytes:
        """Feed bytes from the keypad; returns bytes to send back at once (may be empty).

        Raises ``IncompatiblePeerError`` (and the session fails) when the keypad speaks another
        protocol version."""
        self._check("receive_data")
        out = b""
        for item in self._decoder.feed(data):
            if isinstance(item, BadSpan):
                self.bad_spans += 1
                continue
            out += self._handle(item)
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def serial(self) -> str:
        return self.hello.serial if self.hello else ""

    def _handle(self, frame: Frame) -> bytes:
        m = frame.message
        if isinstance(m, codec.Hello):
            self._check_version(m)
            if not frame.flags & codec.HeaderFlags.RESPONSE:
                # The keypad came up on the link by itself (plugged in, rebooted): it waits
                # for host_hello before it opens its session and sends ratings. Up since before
                # our host_hello (its uptime says so; a late frame only makes it look younger),
                # it has that one to answer: one host_hello per connection (a lost one is
                # repeated after HELLO_RETRY_MS).
                up_since = self.clock() - m.uptime_ms
                if self.state is SessionState.SAYING and up_since < (self._opened_at or 0):
                    return b""
                return self.open()
            self._opened_at = None  # answered: no more host_hello retries
            self.state = SessionState.OPEN
            return self._on_hello(m)
        if self.hello is None:
            # Not knowing the keypad yet (its hello was lost on the way), nothing it says can be
            # filed under the right serial: it is not ACKed, so the keypad says it again after
            # the host_hello retry.
            return b""
        if isinstance(m, codec.Rating):
            self._on_rating(m, frame)
        elif isinstance(m, codec.Status):
            if self.hello is not None:
                self._anchor(self.hello.boot_id, m.uptime_ms)
            self._events.append(_event(Status, m, serial=self.serial))
        elif isinstance(m, codec.Result):
            values = self._pending_values.pop(m.request_seq, {})
            self._events.append(_event(CommandResult, m, request_id=m.request_seq, values=values))
        elif isinstance(m, codec.ConfigValue):
            self._pending_values.setdefault(m.request_seq, {})[m.key] = m.value
        elif isinstance(m, codec.KeyEvent):
            time_ms = self._time_of(0, m.uptime_ms)[0]
            self._events.append(_event(KeyEvent, m, serial=self.serial, time_ms=time_ms))
        elif isinstance(m, codec.Log):
            self._events.append(_event(LogLine, m, serial=self.serial, level=int(m.level)))
        elif isinstance(m, codec.Unknown):
            self._events.append(_event(UnknownMessage, m, serial=self.serial))
        return b""

    def _check_version(self, m: codec.Hello) -> None:
        if m.protocol_version != codec.PROTOCOL_VERSION:
            self.state = SessionState.FAILED
            self._opened_at = None
            raise IncompatiblePeerError(
                f"keypad {m.serial or '?'} speaks protocol version {m.protocol_version}, "
                f"this host speaks {codec.PROTOCOL_VERSION}: update the "
                + ("host software" if m.protocol_version > codec.PROTOCOL_VERSION else "firmware")
            )

    def _on_hello(self, m: codec.Hello) -> bytes:
        self._anchor(m.boot_count, m.uptime_ms)
        if self.hello is None or m.acked_seq > self._acked:
            self._acked = m.acked_seq
            self._confirmed = {s for s in self._confirmed if s > m.acked_seq}
        self.hello = _event(
            Connected,
            m,
            schema_matches=m.schema_fingerprint == codec.SCHEMA_FINGERPRINT,
            boot_id=m.boot_count,
        )
        self._events.append(self.hello)
        if self.clock() - self._last_sync >= 1000:  # not synced with the host_hello just now
            return self.time_sync()
        return b""

    def _anchor(self, boot_id: int, uptime_ms: int) -> None:
        # Wall time of the boot's uptime 0, from a frame that says its uptime as it is sent.
        # A frame can arrive late (a busy host, a stalled link), never early, so the smallest
        # estimate is the best one.
        estimate = self.clock() - uptime_ms
        best = self._boot_anchor.get(boot_id)
        if best is None or estimate < best:
            self._boot_anchor[boot_id] = estimate

    def _time_of(self, boot_id: int, uptime_ms: int) -> tuple[int, bool]:
        """Wall time of a keypad uptime: exact when this host has seen the boot (from its
        hello and status frames), else the receive time (and not exact)."""
        boot = boot_id or (self.hello.boot_id if self.hello else 0)
        anchor = self._boot_anchor.get(boot)
        if anchor is None:
            return self.clock(), False
        return anchor + uptime_ms, True

    def _on_rating(self, m: codec.Rating, frame: Frame) -> None:
        if m.journal_seq == 0:
            return  # not a journal record: nothing to store or ACK
        if m.epoch_ms is not None:
            when, exact = m.epoch_ms, True
        else:
            when, exact = self._time_of(m.boot_id, m.uptime_ms)
        self._events.append(
            _event(
                Rating,
                m,
                serial=self.serial,
                time_ms=when,
                time_exact=exact,
                retransmit=bool(frame.flags & codec.HeaderFlags.RETRANSMIT),
                message=m,
            )
        )
