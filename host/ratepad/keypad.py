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

Every rule above is the driver core's (``ratepad.driver.core``, sans-IO, its states as a table);
this module is its thread shell: a reader thread moves the bytes, callers block on ``Pending``.

Logging goes to the ``ratepad.keypad`` logger (connections at INFO, frames at DEBUG).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .driver import core
from .driver.core import (
    MAX_PROMPT_MS,
    PROMPT_GRACE_S,
    Action,
    Prompt,
    ReconnectPolicy,
    Watchdog,
    prompt_timeout_ms,
)
from .driver.shell import CoreShell, Listener
from .errors import (
    CommandError,
    DisconnectedError,
    LocalProtocolError,
    PromptEndedError,
    RatepadError,
    RatepadTimeout,
    TransportError,
)
from .events import CommandResult, Connected, Event, Rating
from .transports import Transport
from .wire import codec
from .wire.session import wall_clock_ms

__all__ = [
    "MAX_PROMPT_MS",
    "PROMPT_GRACE_S",
    "CommandError",
    "Keypad",
    "Listener",
    "PromptHandle",
    "ReconnectPolicy",
    "Watchdog",
]

log = logging.getLogger("ratepad.keypad")

"""A callback that receives events (see ``Keypad.add_listener``)."""

T = TypeVar("T")


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

    def __init__(self, keypad: Keypad, record: Prompt) -> None:
        self.keypad = keypad
        self.record = record  # the driver core's (it owns the prompt's state)
        self.outcome: Pending[Rating] = Pending()
        record.waiter = self

    @property
    def prompt_id(self) -> int:
        return self.record.prompt_id

    @property
    def deadline(self) -> float:
        """The prompt's deadline on ``time.monotonic()`` (the Keypad's timer)."""
        return self.record.deadline

    @property
    def claim(self) -> bool:
        return self.record.claim

    @property
    def rating(self) -> Rating | None:
        """The answering rating, once there is one."""
        return self.record.rating

    @property
    def answered(self) -> bool:
        """True once a rating answered this prompt."""
        return self.record.rating is not None

    @property
    def state(self) -> str:
        """issued, answered, timed_out, cancelled or superseded (see the class)."""
        return self.keypad.core.prompt_state(self.record)

    def wait(self, timeout: float | None = None) -> Rating:
        """The rating answering this prompt.

        Raises RatepadTimeout when none came by the prompt's deadline (or ``timeout`` s),
        PromptEndedError when it was cancelled or superseded, DisconnectedError on ``close()``.
        """
        self.keypad._not_on_reader("wait for a prompt")
        limit = self.deadline - self.keypad.core.timer() if timeout is None else timeout
        if not self.outcome.wait(max(limit, 0)):
            raise RatepadTimeout(f"no rating for prompt {self.prompt_id}")
        return self.outcome.result()

    def cancel(self) -> None:
        """Disarm the keypad for this prompt (CommandError ``not_found`` if no longer armed)."""
        self.keypad.cancel_prompt(self.prompt_id)


class Keypad(CoreShell):
    """A connected keypad (sync API). Use ``ratepad.open(url)`` to get one.

    Options: ``connect_timeout`` (s to wait for the keypad's hello), ``command_timeout`` (s to
    wait for a command's answer), ``reconnect`` (a ``ReconnectPolicy`` or ``"off"``, ``"fixed"``,
    ``"backoff"``), ``on_disconnect`` (called with the reason whenever a connection ends),
    ``listeners`` (callbacks for every event, see ``add_listener``), ``watchdog`` (a
    ``Watchdog``: reconnect a link that looks up but is silent).

    The rules (what a hello, a status or a rating means, prompts, commands, when to reconnect)
    are the driver core's (``ratepad.driver.core``); this class moves bytes on a reader thread
    and wakes the callers waiting.
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
        watchdog: Watchdog | None = None,
    ) -> None:
        super().__init__(transport, clock=clock, software=software, reconnect=reconnect,
                         listeners=listeners, watchdog=watchdog)  # fmt: skip
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.on_disconnect = on_disconnect
        self._events: queue.Queue[Event] = queue.Queue(maxsize=100_000)
        self._event_waiters: list[Callable[[], None]] = []
        self._lock = threading.RLock()  # the core and the transport's writes: one at a time
        self._up = threading.Event()  # set while connected (and on close, to wake waiters)
        self.hello: Pending[Connected] = Pending()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, name="ratepad-reader", daemon=True)
        self.transport.open()
        self._call(self.core.link_up)
        self._thread.start()
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

    # -- state: ``CoreShell`` (info, status, session, reconnect, connected, closed, listeners) ----

    # -- the shell: the core's actions carried out ------------------------------------------------
    def _not_on_reader(self, what: str) -> None:
        if threading.current_thread() is self._thread:
            raise LocalProtocolError(f"cannot {what} from a listener (it runs on the reader)")

    def _call(self, fn: Callable[..., list[Action]], *args: Any) -> list[Action]:
        # The core is shared by the reader thread and callers: one call at a time, and the bytes
        # it returns go out before another call is made (sequence numbers stay in order).
        with self._lock:
            actions = fn(*args)
            self._send(actions)
        self._apply(actions)
        return actions

    def _send(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, core.Send) and action.data:
                self.transport.write(action.data)

    def _apply(self, actions: list[Action]) -> None:
        if self.core.connected or self.closed:
            self._up.set()
        else:
            self._up.clear()
        for a in actions:
            if isinstance(a, core.Deliver):
                log.debug("%s: %s", self.transport.url, type(a.event).__name__)
                if isinstance(a.event, Connected):
                    log.info(
                        "%s: connected to keypad %s (firmware %s)",
                        self.transport.url,
                        a.event.serial,
                        a.event.firmware_version,
                    )
                self._put(a.event)
            elif isinstance(a, core.Greeted):
                self.hello.resolve(a.info)
            elif isinstance(a, core.Resolve):
                a.command.waiter.resolve(a.result)
            elif isinstance(a, core.CommandsFailed):
                for command in a.commands:
                    command.waiter.fail(DisconnectedError(a.reason))
            elif isinstance(a, core.Answer):
                a.prompt.waiter.outcome.resolve(a.rating)
            elif isinstance(a, core.PromptEnded):
                a.prompt.waiter.outcome.fail(PromptEndedError(a.prompt.prompt_id, a.prompt.ended))
            elif isinstance(a, core.Disconnected):
                if a.reason != "closed":
                    log.warning("%s: link lost: %s", self.transport.url, a.reason)
                self._disconnected(a.reason)
            elif isinstance(a, core.DropLink):
                log.warning("%s: link stalled (%s), reconnecting", self.transport.url, a.reason)
                with contextlib.suppress(RatepadError, OSError):
                    self.transport.close()  # the reader's next read fails: lost, reconnect
            elif isinstance(a, core.Ended):
                self._ended(a)

    def _ended(self, a: core.Ended) -> None:
        self.hello.fail(a.error)
        for command in a.commands:
            command.waiter.fail(a.error)
        for prompt in a.prompts:
            prompt.waiter.outcome.fail(a.error)
        self._up.set()  # wake whoever waits for a connection: there will be none
        self._wake_event_waiters()

    def _reader(self) -> None:
        while not self._stop.is_set() and not self.core.ended:
            try:
                data = self.transport.read(0.2)
                if data:
                    self._call(self.core.receive, data)
                self._call(self.core.poll)
            except TransportError as exc:
                if self._stop.is_set():
                    return
                for action in self._call(self.core.link_lost, str(exc)):
                    if isinstance(action, core.Reconnect):
                        log.info("%s: reconnecting in %.2f s", self.transport.url, action.delay)
                        if self._stop.wait(action.delay):
                            return
                        self._reopen()
            except RatepadError as exc:  # nothing to reconnect to (the end of a capture)
                self._call(self.core.fail, exc)
        if self.core.error is not None and not self._closed:
            log.error("%s: %s", self.transport.url, self.core.error)

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
            self._call(self.core.link_up)
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

    # -- events ---------------------------------------------------------------------------------
    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once the Keypad is closed."""
        self._not_on_reader("wait for events")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self._take_event()
            if event is not None or self.closed:
                return event
            wake = threading.Event()
            with self._lock:
                self._event_waiters.append(wake.set)
            if (event := self._take_event()) is not None:
                return event
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            wake.wait(left)

    def _take_event(self) -> Event | None:
        try:
            return self._events.get_nowait()
        except queue.Empty:
            return None

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
        self._call(self.core.confirm, rating)

    # -- commands -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DisconnectedError(f"{self.transport.url}: closed")
        if self.core.error is not None:
            raise self.core.error

    def _submit(self, message: codec.HostMessage) -> tuple[core.Command, Pending[CommandResult]]:
        self._check_open()
        if not self.core.connected:
            raise DisconnectedError(f"{self.transport.url}: not connected")
        waiter: Pending[CommandResult] = Pending()
        with self._lock:
            command, actions = self.core.request(message, waiter)
            try:
                self._send(actions)
            except TransportError as exc:
                self.core.forget(command)
                raise DisconnectedError(f"{self.transport.url}: {exc}") from None
        return command, waiter

    def command(self, message: codec.HostMessage, timeout: float | None = None) -> CommandResult:
        """Send a command and wait for its result (RatepadTimeout if none comes)."""
        self._not_on_reader("wait for a command")
        limit = self.command_timeout if timeout is None else timeout
        self._up.wait(limit)  # reconnecting: wait a little for it
        command, waiter = self._submit(message)
        if not waiter.wait(limit):
            with self._lock:
                self.core.forget(command)
            raise RatepadTimeout(f"no answer to {message.type_name} in time")
        return waiter.result()

    def _checked(self, message: codec.HostMessage) -> CommandResult:
        result = self.command(message)
        if not result.ok:
            raise CommandError(message.type_name, result)
        return result

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
        with self._lock:
            record, message = self.core.new_prompt(
                staff, prompt_timeout_ms(timeout), claim, prompt_id
            )
            handle = PromptHandle(self, record)
        try:
            self._checked(message)
        except BaseException:
            with self._lock:
                self.core.forget_prompt(record)
            raise
        self._call(self.core.armed, record)
        return handle

    def prompt(self, staff: str = "", timeout: float = 30.0) -> Rating:
        """Arm the keypad and wait for the customer's rating (RatepadTimeout if none).

        The rating still has to be confirmed (``confirm``) once stored.
        """
        handle = self.start_prompt(staff, timeout)
        try:
            return handle.wait()
        except RatepadTimeout:
            with self._lock:
                self.core.forget_prompt(handle.record)
            raise

    def cancel_prompt(self, prompt_id: int = 0) -> None:
        """Disarm the keypad (``prompt_id`` 0: whatever prompt is armed)."""
        self._checked(codec.CancelPrompt(prompt_id))
        self._call(self.core.cancelled, prompt_id)

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
    def close(self) -> None:
        """Close the link; every blocked call raises DisconnectedError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._call(self.core.close)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        with contextlib.suppress(TransportError, OSError):
            self.transport.close()

    def __enter__(self) -> Keypad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
