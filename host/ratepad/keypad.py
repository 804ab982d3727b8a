"""The synchronous driver facade: one keypad, one background reader, typed events.

    with ratepad.open("hid://") as kp:
        rating = kp.prompt("S001", timeout=30)    # the customer's answer, or RatepadTimeout
        store(rating)
        kp.confirm(rating)                        # only now is it ACKed (deleted on the keypad)

The link is kept up by the reader thread: on a lost link it emits ``Lost``, reconnects with
backoff and says hello again; the keypad then resends whatever was not ACKed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .errors import (
    CommandError,
    DisconnectedError,
    LocalProtocolError,
    RatepadError,
    RatepadTimeout,
    TransportError,
)
from .events import CommandResult, Connected, Event, Lost, Rating, Status
from .transports import Transport
from .wire import codec
from .wire.session import Session, wall_clock_ms

__all__ = ["CommandError", "Keypad", "PromptHandle"]

PROMPT_GRACE_S = 60.0  # a rating may still answer a prompt this long after its timeout


class PromptHandle:
    """A prompt armed on the keypad; ``wait()`` gives its rating."""

    def __init__(self, keypad: Keypad, prompt_id: int, deadline: float) -> None:
        self.keypad = keypad
        self.prompt_id = prompt_id
        self.deadline = deadline
        self._done = threading.Event()
        self.rating: Rating | None = None

    def _answer(self, rating: Rating) -> None:
        self.rating = rating
        self._done.set()

    @property
    def answered(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Rating:
        """The rating answering this prompt; RatepadTimeout if none came in time."""
        limit = self.deadline - time.monotonic() if timeout is None else timeout
        if not self._done.wait(max(limit, 0)):
            raise RatepadTimeout(f"no rating for prompt {self.prompt_id}")
        assert self.rating is not None
        return self.rating

    def cancel(self) -> None:
        self.keypad.cancel_prompt(self.prompt_id)


class Keypad:
    """A connected keypad (sync API). Use ``ratepad.open(url)`` to get one."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        connect_timeout: float = 5.0,
        command_timeout: float = 3.0,
        software: str = "ratepad",
    ) -> None:
        self.transport = transport
        self.session = Session(clock=clock, software=software)
        self.command_timeout = command_timeout
        self.info: Connected | None = None
        self.status: Status | None = None
        self._events: queue.Queue[Event] = queue.Queue(maxsize=100_000)
        self._lock = threading.RLock()
        self._results: dict[int, queue.Queue[CommandResult]] = {}
        self._prompts: dict[int, PromptHandle] = {}
        self._connected = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._prompt_ids = itertools.count(int.from_bytes(os.urandom(3), "big") + 1)
        self.transport.open()
        self._send(self.session.open())
        self._thread = threading.Thread(target=self._reader, name="ratepad-reader", daemon=True)
        self._thread.start()
        if not self._connected.wait(connect_timeout):
            self.close()
            if self._error is not None:
                raise self._error
            raise RatepadTimeout(
                f"{transport.url}: no hello from the keypad in {connect_timeout} s"
            )

    # -- plumbing -----------------------------------------------------------------------------
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
        backoff = 0.1
        while not self._closed:
            try:
                data = self.transport.read(0.2)
                if data:
                    self._session_call(self.session.receive_data, data)
                self._session_call(self.session.poll)
                self._dispatch()
                backoff = 0.1
            except TransportError as exc:
                if self._closed:
                    return
                self._lost(str(exc))
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._reopen()
            except RatepadError as exc:  # incompatible peer: stop, tell the caller
                self._error = exc
                self._connected.set()
                self._events.put(Lost(self.session.serial, str(exc)))
                return

    def _lost(self, reason: str) -> None:
        # One Lost per outage: failed reconnection attempts while away are not news.
        if self._connected.is_set():
            self._connected.clear()
            self._put(Lost(self.session.serial, reason))

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
        except TransportError:
            pass

    def _put(self, event: Event) -> None:
        # nobody reads events: unconfirmed ratings come again later
        with contextlib.suppress(queue.Full):
            self._events.put_nowait(event)

    def _dispatch(self) -> None:
        if self._prompts:  # forget prompts nobody can answer any more
            now = time.monotonic()
            for prompt_id, pending in list(self._prompts.items()):
                if now > pending.deadline + PROMPT_GRACE_S:
                    self._prompts.pop(prompt_id, None)
        while (event := self.session.next_event()) is not None:
            if isinstance(event, Connected):
                self.info = event
                self._connected.set()
            elif isinstance(event, Status):
                self.status = event
            elif isinstance(event, CommandResult):
                waiter = self._results.get(event.request_id)
                if waiter is not None:
                    waiter.put(event)
                    continue
            elif isinstance(event, Rating):
                handle = self._prompts.pop(event.prompt_id, None) if event.prompt_id else None
                if handle is not None:
                    handle._answer(event)
            self._put(event)

    # -- events ---------------------------------------------------------------------------------
    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Events as they come; stops after ``timeout`` seconds without one (None: never)."""
        while not self._closed:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event

    def confirm(self, rating: Rating) -> None:
        """The rating is stored durably: ACK it so the keypad may delete it."""
        self._session_call(self.session.confirm, rating)

    # -- commands -------------------------------------------------------------------------------
    def command(self, message: codec.HostMessage, timeout: float | None = None) -> CommandResult:
        """Send a command and wait for its result (RatepadTimeout if none comes)."""
        if not self._connected.wait(self.command_timeout if timeout is None else timeout):
            raise DisconnectedError(f"{self.transport.url}: not connected")
        waiter: queue.Queue[CommandResult] = queue.Queue(maxsize=1)
        with self._lock:
            request_id, frame = self.session.request(message)
            self._results[request_id] = waiter
        try:
            self._send(frame)
            return waiter.get(timeout=self.command_timeout if timeout is None else timeout)
        except queue.Empty:
            raise RatepadTimeout(f"no answer to {message.type_name} in time") from None
        finally:
            self._results.pop(request_id, None)

    def _checked(self, message: codec.HostMessage) -> CommandResult:
        result = self.command(message)
        if not result.ok:
            raise CommandError(message.type_name, result)
        return result

    def start_prompt(self, staff: str = "", timeout: float = 30.0) -> PromptHandle:
        """Arm the keypad without waiting; the handle's ``wait()`` gives the rating."""
        if timeout <= 0:
            raise LocalProtocolError("timeout must be positive")
        prompt_id = next(self._prompt_ids) & 0xFFFFFFFF or 1
        handle = PromptHandle(self, prompt_id, time.monotonic() + timeout)
        self._prompts[prompt_id] = handle
        try:
            self._checked(codec.Prompt(prompt_id, int(timeout * 1000), staff))
        except BaseException:
            self._prompts.pop(prompt_id, None)
            raise
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

    def cancel_prompt(self, prompt_id: int = 0) -> None:
        self._checked(codec.CancelPrompt(prompt_id))
        self._prompts.pop(prompt_id, None)

    def login(self, staff: str, display_name: str = "") -> None:
        self._checked(codec.Login(staff, display_name))

    def logout(self, staff: str = "") -> None:
        self._checked(codec.Logout(staff))

    def get_config(self, key: str = "") -> dict[str, str]:
        """One setting, or every setting for an empty key."""
        return dict(self._checked(codec.GetConfig(key)).values)

    def set_config(self, key: str, value: Any) -> None:
        self._checked(codec.SetConfig(key, str(value)))

    def self_test(self) -> CommandResult:
        return self.command(codec.SelfTest())

    def key_events(self, enabled: bool = True) -> None:
        self._checked(codec.KeyEvents(enabled))

    def reboot(self, maintenance: bool = False) -> None:
        mode = codec.RebootMode.MAINTENANCE if maintenance else codec.RebootMode.NORMAL
        self._checked(codec.Reboot(mode))

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if hasattr(self, "_thread") and self._thread.is_alive():
            self._thread.join(timeout=2)
        with contextlib.suppress(TransportError):
            self.transport.close()

    def __enter__(self) -> Keypad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
