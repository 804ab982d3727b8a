"""The synchronous driver facade: one keypad, one background reader, typed events.

    with ratepad.open("hid://") as kp:
        rating = kp.prompt("S001", timeout=30)    # the customer's answer, or RatepadTimeout
        store(rating)
        kp.confirm(rating)                        # only now is it ACKed (deleted on the keypad)

Delivery rules:

* **Ratings are delivered once.** A rating that answers a prompt armed with ``prompt()`` or
  ``start_prompt()`` goes to that prompt (its handle) and not to ``events()`` or the listeners;
  every other rating (unprompted, or answering a prompt started with ``claim=False``) goes to
  ``events()`` and the listeners. A rating that is not confirmed is sent again by the keypad after
  a reconnect (flag ``retransmit``): confirm what you stored.
* **One ``Connected`` and one ``Status`` per connection** at connect time (the keypad's own hello
  and the answer to host_hello are one connection); later statuses are the keypad's heartbeat.
* Listeners (``add_listener``) are called on the reader thread with every event that
  ``events()`` gets, in order; they must not block (``confirm`` is fine, ``prompt`` is refused).
* The link is kept up by the reader thread according to ``reconnect`` (``"backoff"`` by default,
  ``"fixed"`` or ``"off"``, or a ``ReconnectPolicy``): on a lost link it emits ``Lost``, calls
  ``on_disconnect``, reconnects and says hello again; the keypad then resends whatever was not
  ACKed. With ``"off"`` a lost link ends the Keypad: blocked calls raise ``DisconnectedError``.
* ``close()`` wakes every blocked call (``prompt``, ``command``, ``next_event``) with
  ``DisconnectedError`` (``next_event`` and ``events`` just end).

Logging goes to the ``ratepad.keypad`` logger (connections at INFO, frames at DEBUG).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from .errors import (
    CommandError,
    DisconnectedError,
    LocalProtocolError,
    PromptEndedError,
    RatepadError,
    RatepadTimeout,
    TransportError,
)
from .events import CommandResult, Connected, Event, Lost, Rating, Status
from .transports import Transport
from .wire import codec
from .wire.session import Session, wall_clock_ms

__all__ = ["CommandError", "Keypad", "Listener", "PromptHandle", "ReconnectPolicy"]

log = logging.getLogger("ratepad.keypad")

PROMPT_GRACE_S = 60.0  # a rating may still answer a prompt this long after its timeout
MAX_PROMPT_MS = 0x1FFFFFFF  # the firmware's limit (ticks arithmetic, 6.2 days)

Listener = Callable[[Event], None]
"""A callback that receives events (see ``Keypad.add_listener``)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How the reader thread gets a lost link back.

    ``mode``: ``off`` (a lost link ends the Keypad), ``fixed`` (try again every ``delay`` s) or
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


class Pending(Generic[T]):
    """A result that another thread will provide (thread-safe; callbacks for asyncio)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def _finish(self, value: T | None, error: BaseException | None) -> bool:
        with self._lock:
            if self._event.is_set():
                return False
            self._value, self._error = value, error
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()
        return True

    def resolve(self, value: T) -> bool:
        return self._finish(value, None)

    def fail(self, error: BaseException) -> bool:
        return self._finish(None, error)

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (on whatever thread finishes this) once done; at once if done."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        fn()

    def result(self) -> T:
        """The value (raises the error); only once done."""
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)


class PromptHandle:
    """A prompt armed on the keypad; ``wait()`` gives its rating.

    ``state`` is ``issued``, ``answered``, ``timed_out`` (no rating by the deadline; a rating
    pressed in time but delivered late still answers it), ``cancelled`` or ``superseded``.
    """

    def __init__(self, keypad: Keypad, prompt_id: int, deadline: float, claim: bool) -> None:
        self.keypad = keypad
        self.prompt_id = prompt_id
        self.deadline = deadline
        self.claim = claim
        self.outcome: Pending[Rating] = Pending()
        self._ended = ""

    def _answer(self, rating: Rating) -> None:
        self.outcome.resolve(rating)

    def _end(self, state: str) -> None:
        self._ended = state
        self.outcome.fail(PromptEndedError(self.prompt_id, state))

    @property
    def rating(self) -> Rating | None:
        """The answering rating, once there is one."""
        if self.outcome.done and not self._ended:
            with contextlib.suppress(RatepadError):
                return self.outcome.result()
        return None

    @property
    def answered(self) -> bool:
        """True once a rating answered this prompt."""
        return self.rating is not None

    @property
    def state(self) -> str:
        """issued, answered, timed_out, cancelled or superseded (see the class)."""
        if self.rating is not None:
            return "answered"
        if self._ended:
            return self._ended
        if self.outcome.done:  # the Keypad was closed or the link ended for good
            return "cancelled"
        return "timed_out" if time.monotonic() >= self.deadline else "issued"

    def wait(self, timeout: float | None = None) -> Rating:
        """The rating answering this prompt.

        Raises RatepadTimeout when none came by the prompt's deadline (or ``timeout`` s),
        PromptEndedError when it was cancelled or superseded, DisconnectedError on ``close()``.
        """
        self.keypad._not_on_reader("wait for a prompt")
        limit = self.deadline - time.monotonic() if timeout is None else timeout
        if not self.outcome.wait(max(limit, 0)):
            raise RatepadTimeout(f"no rating for prompt {self.prompt_id}")
        return self.outcome.result()

    def cancel(self) -> None:
        """Disarm the keypad for this prompt (CommandError ``not_found`` if no longer armed)."""
        self.keypad.cancel_prompt(self.prompt_id)


class Keypad:
    """A connected keypad (sync API). Use ``ratepad.open(url)`` to get one.

    Options: ``connect_timeout`` (s to wait for the keypad's hello), ``command_timeout`` (s to
    wait for a command's answer), ``reconnect`` (a ``ReconnectPolicy`` or ``"off"``, ``"fixed"``,
    ``"backoff"``), ``on_disconnect`` (called with the reason whenever a connection ends),
    ``listeners`` (callbacks for every event, see ``add_listener``).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        connect_timeout: float = 5.0,
        command_timeout: float = 3.0,
        software: str = "ratepad",
        reconnect: ReconnectPolicy | str = "backoff",
        on_disconnect: Callable[[str], None] | None = None,
        listeners: tuple[Listener, ...] | list[Listener] = (),
        block: bool = True,
    ) -> None:
        self.transport = transport
        self.session = Session(clock=clock, software=software)
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.reconnect = ReconnectPolicy.of(reconnect)
        self.on_disconnect = on_disconnect
        self.status: Status | None = None
        self._info: Connected | None = None
        self._events: queue.Queue[Event] = queue.Queue(maxsize=100_000)
        self._event_waiters: list[Callable[[], None]] = []
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.RLock()
        self._results: dict[int, Pending[CommandResult]] = {}
        self._prompts: dict[int, PromptHandle] = {}
        self._connected = False
        self._link_boot: int | None = None  # boot id of the keypad on this connection
        self._status_seen = False  # a Status was delivered on this connection
        self.hello: Pending[Connected] = Pending()
        self._closed = False
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._prompt_ids = itertools.count(int.from_bytes(os.urandom(3), "big") + 1)
        self._thread = threading.Thread(target=self._reader, name="ratepad-reader", daemon=True)
        self._opened_by_caller = block
        if block:
            self.transport.open()
            self._send(self.session.open())
            self._thread.start()
            self._await_hello()
        else:  # asyncio: the reader opens the link; await ``hello``
            self._thread.start()

    def _await_hello(self) -> None:
        if not self.hello.wait(self.connect_timeout):
            self.close()
            raise RatepadTimeout(
                f"{self.transport.url}: no hello from the keypad in {self.connect_timeout} s"
            )
        try:
            self.hello.result()
        except BaseException:
            self.close()
            raise

    # -- state ----------------------------------------------------------------------------------
    @property
    def info(self) -> Connected:
        """The keypad's hello (who it is), refreshed on every connection."""
        if self._info is None:
            raise DisconnectedError(f"{self.transport.url}: not connected yet")
        return self._info

    @property
    def connected(self) -> bool:
        """True while the link is up and the keypad has said hello."""
        return self._connected and not self._closed

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called or the link ended for good."""
        return self._closed or self._error is not None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` on the reader thread for every event ``events()`` gets.

        A listener that raises is logged and kept. Remove it with ``remove_listener``."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- plumbing -----------------------------------------------------------------------------
    def _not_on_reader(self, what: str) -> None:
        if threading.current_thread() is self._thread:
            raise LocalProtocolError(f"cannot {what} from a listener (it runs on the reader)")

    def _send(self, data: bytes) -> None:
        if data:
            with self._lock:
                self.transport.write(data)

    def _session_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # The session is shared by the reader thread and callers: one at a time, and the
        # frame it returns goes out before another is made (sequence numbers stay in order).
        with self._lock:
            result = fn(*args)
            data = result[1] if isinstance(result, tuple) else result
            if data:
                self.transport.write(data)
            return result

    def _reader(self) -> None:
        if not self._opened_by_caller and not self._thread_opened():
            return
        attempt = 0
        while not self._stop.is_set():
            try:
                data = self.transport.read(0.2)
                if data:
                    self._session_call(self.session.receive_data, data)
                self._session_call(self.session.poll)
                self._dispatch()
                if self._connected:
                    attempt = 0
            except TransportError as exc:
                if self._stop.is_set():
                    return
                self._lost(str(exc))
                delay = self.reconnect.delay_for(attempt)
                if delay is None:
                    self._end(DisconnectedError(f"{self.transport.url}: link lost: {exc}"))
                    return
                attempt += 1
                log.info("%s: reconnecting in %.2f s", self.transport.url, delay)
                if self._stop.wait(delay):
                    return
                self._reopen()
            except RatepadError as exc:  # incompatible peer: stop, tell every caller
                log.error("%s: %s", self.transport.url, exc)
                self._lost(str(exc))
                self._end(exc)
                return

    def _thread_opened(self) -> bool:
        # block=False: open the link on the reader thread, so that asyncio never waits
        try:
            self.transport.open()
            self._send(self.session.open())
        except RatepadError as exc:
            self._end(exc)
            return False
        return True

    def _end(self, error: BaseException) -> None:
        """The Keypad cannot go on (``error``): wake everyone blocked on it."""
        if self._error is None:
            self._error = error
        self.hello.fail(error)
        with self._lock:
            results, self._results = dict(self._results), {}
            prompts, self._prompts = dict(self._prompts), {}
        for pending in results.values():
            pending.fail(error)
        for handle in prompts.values():
            handle.outcome.fail(error)
        self._wake_event_waiters()

    def _lost(self, reason: str) -> None:
        # One Lost per outage: failed reconnection attempts while away are not news.
        if self._connected:
            self._connected = False
            self._link_boot = None
            log.warning("%s: link lost: %s", self.transport.url, reason)
            self._put(Lost(self.session.serial, reason))
            self._disconnected(reason)
        # commands sent on the old link will never be answered
        with self._lock:
            results, self._results = dict(self._results), {}
        for pending in results.values():
            pending.fail(DisconnectedError(f"{self.transport.url}: link lost: {reason}"))

    def _disconnected(self, reason: str) -> None:
        if self.on_disconnect is not None:
            try:
                self.on_disconnect(reason)
            except Exception:
                log.exception("on_disconnect callback failed")

    def _reopen(self) -> None:
        with contextlib.suppress(TransportError):
            self.transport.close()
        try:
            self.transport.open()
            old = self.session
            self.session = Session(clock=old.clock, software=old.software)
            # request ids go on from where they were, so an answer to a request of the old
            # link can never be taken for one of the new
            self.session.continue_from(old)
            self._session_call(self.session.open)
        except TransportError as exc:
            log.debug("%s: reconnect failed: %s", self.transport.url, exc)

    def _put(self, event: Event) -> None:
        # nobody reads events: unconfirmed ratings come again later
        with contextlib.suppress(queue.Full):
            self._events.put_nowait(event)
        self._wake_event_waiters()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, type(event).__name__)

    def _wake_event_waiters(self) -> None:
        with self._lock:
            waiters, self._event_waiters = self._event_waiters, []
        for fn in waiters:
            fn()

    def _dispatch(self) -> None:
        if self._prompts:  # forget prompts nobody can answer any more
            now = time.monotonic()
            for prompt_id, pending in list(self._prompts.items()):
                if now > pending.deadline + PROMPT_GRACE_S:
                    self._prompts.pop(prompt_id, None)
        while (event := self.session.next_event()) is not None:
            log.debug("%s: %s", self.transport.url, type(event).__name__)
            if isinstance(event, Connected):
                self._info = event
                self.hello.resolve(event)
                if self._connected and self._link_boot == event.boot_id:
                    continue  # the same connection said hello twice (its own and the answer)
                if self._connected:  # rebooted without a link error: a new connection
                    self._put(Lost(event.serial, "keypad restarted"))
                    self._disconnected("keypad restarted")
                self._connected = True
                self._link_boot = event.boot_id
                self._status_seen = False
                log.info(
                    "%s: connected to keypad %s (firmware %s)",
                    self.transport.url,
                    event.serial,
                    event.firmware_version,
                )
            elif isinstance(event, Status):
                previous, self.status = self.status, event
                if (
                    self._status_seen
                    and previous is not None
                    and _same_status(previous, event)
                    and event.uptime_ms - previous.uptime_ms < 500
                ):
                    continue  # the answer to a repeated hello / time sync: not news
                self._status_seen = True
            elif isinstance(event, CommandResult):
                with self._lock:
                    waiter = self._results.pop(event.request_id, None)
                if waiter is not None:
                    waiter.resolve(event)
                continue
            elif isinstance(event, Rating) and event.prompt_id:
                handle = self._prompts.pop(event.prompt_id, None)
                if handle is not None:
                    handle._answer(event)
                    if handle.claim:
                        continue  # delivered once: to the prompt that asked
            self._put(event)

    # -- events ---------------------------------------------------------------------------------
    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once the Keypad is closed."""
        self._not_on_reader("wait for events")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self.take_event()
            if event is not None or self.closed:
                return event
            wake = threading.Event()
            with self._lock:
                self._event_waiters.append(wake.set)
            if (event := self.take_event()) is not None:
                return event
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            wake.wait(left)

    def take_event(self) -> Event | None:
        """The next event if one is waiting (never blocks)."""
        try:
            return self._events.get_nowait()
        except queue.Empty:
            return None

    def add_event_waiter(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` once the next event is queued or the Keypad ends (for asyncio)."""
        with self._lock:
            self._event_waiters.append(wake)
        if self.closed or not self._events.empty():
            self._wake_event_waiters()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Events as they come; stops after ``timeout`` s without one (None: never), or on
        close."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event

    def confirm(self, rating: Rating) -> None:
        """The rating is stored durably: ACK it so the keypad may delete it."""
        self._session_call(self.session.confirm, rating)

    # -- commands -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise DisconnectedError(f"{self.transport.url}: closed")

    def submit(self, message: codec.HostMessage) -> Pending[CommandResult]:
        """Send a command now; its result arrives on the returned ``Pending`` (never blocks
        beyond writing the frame). DisconnectedError if the link is down."""
        self._check_open()
        if not self._connected:
            raise DisconnectedError(f"{self.transport.url}: not connected")
        waiter: Pending[CommandResult] = Pending()
        with self._lock:
            request_id, frame = self.session.request(message)
            self._results[request_id] = waiter
            try:
                self.transport.write(frame)
            except TransportError as exc:
                self._results.pop(request_id, None)
                raise DisconnectedError(f"{self.transport.url}: {exc}") from None
        return waiter

    def command(self, message: codec.HostMessage, timeout: float | None = None) -> CommandResult:
        """Send a command and wait for its result (RatepadTimeout if none comes)."""
        self._not_on_reader("wait for a command")
        limit = self.command_timeout if timeout is None else timeout
        if not self._connected and not self._closed:  # reconnecting: wait a little for it
            end = time.monotonic() + limit
            while not self._connected and not self.closed and time.monotonic() < end:
                self._stop.wait(0.02)
        waiter = self.submit(message)
        if not waiter.wait(limit):
            raise RatepadTimeout(f"no answer to {message.type_name} in time")
        return waiter.result()

    def _checked(self, message: codec.HostMessage) -> CommandResult:
        result = self.command(message)
        if not result.ok:
            raise CommandError(message.type_name, result)
        return result

    def new_prompt(
        self, staff: str, timeout: float, claim: bool, prompt_id: int | None = None
    ) -> tuple[PromptHandle, Any]:
        """The handle and the message of a new prompt (checked, not sent; for the facades)."""
        if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
            raise LocalProtocolError("timeout must be a positive number of seconds")
        # never round down to 0 ms: the keypad reads 0 as "no timeout"
        timeout_ms = max(1, math.ceil(timeout * 1000))
        if timeout_ms > MAX_PROMPT_MS:
            raise LocalProtocolError(f"timeout must be at most {MAX_PROMPT_MS / 1000:g} s")
        if prompt_id is None:
            prompt_id = next(self._prompt_ids) & 0xFFFFFFFF or 1
        elif isinstance(prompt_id, bool) or not 1 <= prompt_id <= 0xFFFFFFFF:
            raise LocalProtocolError("prompt_id must be 1..4294967295")
        handle = PromptHandle(self, prompt_id, time.monotonic() + timeout, claim)
        return handle, codec.Prompt(prompt_id, timeout_ms, staff)

    def armed(self, handle: PromptHandle) -> None:
        """``handle``'s prompt is armed: older prompts of this Keypad are superseded."""
        with self._lock:
            older = [h for h in self._prompts.values() if h is not handle and not h.outcome.done]
        for h in older:
            self._prompts.pop(h.prompt_id, None)
            h._end("superseded")

    def start_prompt(
        self,
        staff: str = "",
        timeout: float = 30.0,
        *,
        claim: bool = True,
        prompt_id: int | None = None,
    ) -> PromptHandle:
        """Arm the keypad without waiting; the handle's ``wait()`` gives the rating.

        With ``claim=False`` the answering rating also goes to ``events()`` (the agent stores
        every rating from there). A prompt still armed is superseded (its ``wait()`` raises
        PromptEndedError). ``prompt_id``: your own id (1..2**32-1) instead of a fresh one."""
        handle, message = self.new_prompt(staff, timeout, claim, prompt_id)
        self._prompts[handle.prompt_id] = handle
        try:
            self._checked(message)
        except BaseException:
            self._prompts.pop(handle.prompt_id, None)
            raise
        self.armed(handle)
        return handle

    def prompt(self, staff: str = "", timeout: float = 30.0) -> Rating:
        """Arm the keypad and wait for the customer's rating (RatepadTimeout if none).

        The rating still has to be confirmed (``confirm``) once stored.
        """
        handle = self.start_prompt(staff, timeout)
        try:
            return handle.wait()
        except RatepadTimeout:
            self._prompts.pop(handle.prompt_id, None)
            raise

    def prompt_cancelled(self, prompt_id: int) -> None:
        """The keypad disarmed ``prompt_id`` (0: whatever was armed): end its handle."""
        if prompt_id:
            handle = self._prompts.pop(prompt_id, None)
            if handle is not None:
                handle._end("cancelled")
        else:
            for pid in list(self._prompts):
                self.prompt_cancelled(pid)

    def cancel_prompt(self, prompt_id: int = 0) -> None:
        """Disarm the keypad (``prompt_id`` 0: whatever prompt is armed)."""
        self._checked(codec.CancelPrompt(prompt_id))
        self.prompt_cancelled(prompt_id)

    def login(self, staff: str, display_name: str = "") -> None:
        """Log ``staff`` in on the keypad (unprompted ratings are credited to them)."""
        self._checked(codec.Login(staff, display_name))

    def logout(self, staff: str = "") -> None:
        """Log ``staff`` out (empty: whoever is logged in)."""
        self._checked(codec.Logout(staff))

    def get_config(self, key: str = "") -> dict[str, str]:
        """One setting, or every setting for an empty key."""
        return dict(self._checked(codec.GetConfig(key)).values)

    def set_config(self, key: str, value: Any) -> None:
        """Change one setting (CommandError ``bad_value`` or ``not_found`` if refused)."""
        self._checked(codec.SetConfig(key, str(value)))

    def self_test(self) -> CommandResult:
        """Run the keypad's self-test; the result says what failed."""
        return self.command(codec.SelfTest())

    def key_events(self, enabled: bool = True) -> None:
        """Stream debounced key edges (``KeyEvent``) or stop streaming them."""
        self._checked(codec.KeyEvents(enabled))

    def reboot(self, maintenance: bool = False) -> None:
        """Restart the keypad (``maintenance``: into its maintenance mode)."""
        mode = codec.RebootMode.MAINTENANCE if maintenance else codec.RebootMode.NORMAL
        self._checked(codec.Reboot(mode))

    # -- lifecycle ------------------------------------------------------------------------------
    def begin_close(self) -> bool:
        """Stop the reader and wake every blocked call (never blocks); False if closed."""
        if self._closed:
            return False
        was_connected = self._connected
        self._closed = True
        self._stop.set()
        self._end(DisconnectedError(f"{self.transport.url}: closed"))
        if self._error is not None and isinstance(self._error, DisconnectedError):
            self._error = None  # closed on purpose: later calls say "closed"
        self._connected = False
        if was_connected:
            self._disconnected("closed")
        return True

    def finish_close(self) -> None:
        """Close the transport once the reader has stopped (after ``begin_close``)."""
        with contextlib.suppress(TransportError, OSError):
            self.transport.close()

    def close(self) -> None:
        """Close the link; every blocked call raises DisconnectedError. Idempotent."""
        if not self.begin_close():
            return
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        self.finish_close()

    def __enter__(self) -> Keypad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_status(a: Status, b: Status) -> bool:
    return (a.state, a.faults, a.journal_used, a.unacked, a.presses, a.prompt_id) == (
        b.state,
        b.faults,
        b.journal_used,
        b.unacked,
        b.presses,
        b.prompt_id,
    )
