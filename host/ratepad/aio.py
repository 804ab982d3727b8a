"""The asyncio facade: the driver core on an event loop, awaitable, without a thread per call.

    kp = await ratepad.aio.open("sim://K1")
    async with kp:
        rating = await kp.prompt("S001", timeout=30)
        await kp.confirm(rating)
        async for event in kp.events():      # ends when the keypad is closed
            ...

The rules are the driver core's (``ratepad.driver.core``), the same as ``ratepad.Keypad``'s, and
every core call happens on the loop: one thread per link only reads the transport (its reads
block) and hands the bytes to the loop; commands are written at once and their answers resolve
futures on the loop, so any number of concurrent prompts costs no thread and no executor slot.
Listeners are called on the loop. Cancelling an awaited ``prompt()`` cancels the prompt on the
keypad. Every method of ``ratepad.Keypad`` has its twin here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from .driver import core
from .driver.core import (
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
    PromptEndedError,
    RatepadError,
    RatepadTimeout,
    TransportError,
)
from .events import CommandResult, Connected, Event, Rating
from .transports import Transport, open_transport
from .wire import codec
from .wire.session import wall_clock_ms

__all__ = ["AsyncKeypad", "AsyncPromptHandle", "open"]

log = logging.getLogger("ratepad.keypad")

READ_S = 0.2  # a read returns at least this often: the core's periodic duties run then


class AsyncPromptHandle:
    """A prompt armed on the keypad; ``await wait()`` gives its rating."""

    def __init__(self, keypad: AsyncKeypad, record: Prompt) -> None:
        self.keypad = keypad
        self.record = record  # the driver core's (it owns the prompt's state)
        self.outcome: asyncio.Future[Rating] = keypad.loop.create_future()
        record.waiter = self

    @property
    def prompt_id(self) -> int:
        return self.record.prompt_id

    @property
    def state(self) -> str:
        """issued, answered, timed_out, cancelled or superseded."""
        return self.keypad.core.prompt_state(self.record)

    @property
    def answered(self) -> bool:
        return self.record.rating is not None

    def _settle(self, rating: Rating | None, error: BaseException | None) -> None:
        _settle(self.outcome, rating, error)

    async def wait(self, timeout: float | None = None) -> Rating:
        """The rating; RatepadTimeout by the deadline. Cancelling this cancels the prompt."""
        limit = self.record.deadline - self.keypad.core.timer() if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(self.outcome), max(limit, 0))
        except TimeoutError:
            raise RatepadTimeout(f"no rating for prompt {self.prompt_id}") from None
        except asyncio.CancelledError:
            self.keypad._cancel_soon(self.prompt_id)
            raise

    async def cancel(self) -> None:
        """Disarm the keypad for this prompt."""
        await self.keypad.cancel_prompt(self.prompt_id)


class AsyncKeypad(CoreShell):
    """An open keypad for asyncio code (see ``ratepad.Keypad`` for the semantics and options).
    Get one with ``await ratepad.aio.open(url)``."""

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
        self.loop = asyncio.get_running_loop()
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.on_disconnect = on_disconnect
        self.hello: asyncio.Future[Connected] = self.loop.create_future()
        self._events: collections.deque[Event] = collections.deque(maxlen=100_000)
        self._news = asyncio.Event()  # an event was queued, or the keypad ended
        self._up = asyncio.Event()  # connected (or ended: nobody should wait any more)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._reconnecting: asyncio.Task[None] | None = None

    # -- state: ``CoreShell`` (info, status, session, reconnect, connected, closed, listeners) ----

    # -- the shell: the link's bytes to the loop, the core's actions carried out --------------
    async def _link_up(self) -> None:
        """Open the transport (in a thread: it may block) and start reading it."""
        old = self._reader
        if old is not None and old.is_alive():  # the reader of the lost link: let it end
            await self.loop.run_in_executor(None, old.join, 2 * READ_S)
        await self.loop.run_in_executor(None, self._reopen_transport)
        self._run(self.core.link_up)
        self._stop = threading.Event()  # this link's
        reader = threading.Thread(
            target=self._read, args=(self._stop,), name="ratepad-aio-reader", daemon=True
        )
        self._reader = reader
        reader.start()

    def _reopen_transport(self) -> None:
        with contextlib.suppress(TransportError, OSError):
            self.transport.close()
        self.transport.open()

    def _read(self, stop: threading.Event) -> None:
        """The reader thread of one link: bytes (or b"" every READ_S) to the loop, until
        ``stop`` (the link is lost or closed)."""
        while not stop.is_set():
            try:
                data = self.transport.read(READ_S)
            except TransportError as exc:
                if not stop.is_set():
                    self._post(self._lost, str(exc))
                return
            except RatepadError as exc:  # nothing to reconnect to (the end of a capture)
                self._post(self._failed, exc)
                return
            if not stop.is_set():
                self._post(self._received, data)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(fn, *args)

    def _received(self, data: bytes) -> None:
        try:
            if data:
                self._run(self.core.receive, data)
            self._run(self.core.poll)
        except TransportError as exc:  # a reply could not be written
            self._lost(str(exc))

    def _lost(self, reason: str) -> None:
        if self._closed:
            return
        self._stop.set()  # the reader of the old link stops
        for action in self._run(self.core.link_lost, reason):
            if isinstance(action, core.Reconnect):
                log.info("%s: reconnecting in %.2f s", self.transport.url, action.delay)
                self._reconnecting = self.loop.create_task(self._reconnect(action.delay))

    def _failed(self, error: RatepadError) -> None:
        if not self._closed:
            self._run(self.core.fail, error)

    async def _reconnect(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._closed:
            return
        try:
            await self._link_up()
        except TransportError as exc:
            log.debug("%s: reconnect failed: %s", self.transport.url, exc)
            self._lost(str(exc))

    def _run(self, fn: Callable[..., list[Action]], *args: Any) -> list[Action]:
        actions = fn(*args)
        for a in actions:
            if isinstance(a, core.Send) and a.data:
                self.transport.write(a.data)
        self._apply(actions)
        return actions

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, core.Deliver):
                log.debug("%s: %s", self.transport.url, type(a.event).__name__)
                if isinstance(a.event, Connected):
                    log.info("%s: connected to keypad %s", self.transport.url, a.event.serial)
                self._put(a.event)
            elif isinstance(a, core.Greeted):
                if not self.hello.done():
                    self.hello.set_result(a.info)
            elif isinstance(a, core.Resolve):
                _settle(a.command.waiter, a.result, None)
            elif isinstance(a, core.CommandsFailed):
                for command in a.commands:
                    _settle(command.waiter, None, DisconnectedError(a.reason))
            elif isinstance(a, core.Answer):
                a.prompt.waiter._settle(a.rating, None)
            elif isinstance(a, core.PromptEnded):
                error = PromptEndedError(a.prompt.prompt_id, a.prompt.ended)
                a.prompt.waiter._settle(None, error)
            elif isinstance(a, core.Disconnected):
                if a.reason != "closed":
                    log.warning("%s: link lost: %s", self.transport.url, a.reason)
                self._disconnected(a.reason)
            elif isinstance(a, core.DropLink):
                log.warning("%s: link stalled (%s), reconnecting", self.transport.url, a.reason)
                self._lost(a.reason)
            elif isinstance(a, core.Ended):
                self._ended(a)
        if self.core.connected or self.closed:
            self._up.set()
        else:
            self._up.clear()

    def _ended(self, a: core.Ended) -> None:
        self._stop.set()
        _settle(self.hello, None, a.error)
        for command in a.commands:
            _settle(command.waiter, None, a.error)
        for prompt in a.prompts:
            prompt.waiter._settle(None, a.error)
        self._news.set()

    def _disconnected(self, reason: str) -> None:
        if self.on_disconnect is not None:
            try:
                self.on_disconnect(reason)
            except Exception:
                log.exception("on_disconnect callback failed")

    def _put(self, event: Event) -> None:
        self._events.append(event)
        self._news.set()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, type(event).__name__)

    # -- events ---------------------------------------------------------------------------------
    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once closed."""
        while not self._events:
            if self.closed:
                return None
            self._news.clear()
            try:
                await asyncio.wait_for(self._news.wait(), timeout)
            except TimeoutError:
                break
        return self._events.popleft() if self._events else None

    async def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """Events as they come; ends on close (or after ``timeout`` s without one)."""
        while True:
            event = await self.next_event(timeout)
            if event is None:
                return
            yield event

    async def confirm(self, rating: Rating) -> None:
        """ACK a stored rating (writes one frame)."""
        self._run(self.core.confirm, rating)

    # -- commands -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DisconnectedError(f"{self.transport.url}: closed")
        if self.core.error is not None:
            raise self.core.error
        if not self.core.connected:
            raise DisconnectedError(f"{self.transport.url}: not connected")

    def _submit(self, message: codec.HostMessage) -> tuple[core.Command, asyncio.Future[Any]]:
        self._check_open()
        future: asyncio.Future[CommandResult] = self.loop.create_future()
        command, actions = self.core.request(message, future)
        try:
            self._run(lambda: actions)
        except TransportError as exc:
            self.core.forget(command)
            raise DisconnectedError(f"{self.transport.url}: {exc}") from None
        return command, future

    async def command(
        self, message: codec.HostMessage, timeout: float | None = None
    ) -> CommandResult:
        """Send a command and await its result (RatepadTimeout if none comes)."""
        limit = self.command_timeout if timeout is None else timeout
        if not self._up.is_set():  # reconnecting: wait a little for it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), limit)
        command, future = self._submit(message)
        try:
            result: CommandResult = await asyncio.wait_for(future, limit)
        except TimeoutError:
            self.core.forget(command)
            raise RatepadTimeout(f"no answer to {message.type_name} in time") from None
        return result

    async def _checked(self, message: codec.HostMessage) -> CommandResult:
        result = await self.command(message)
        if not result.ok:
            raise CommandError(message.type_name, result)
        return result

    def _cancel_soon(self, prompt_id: int) -> None:
        # on cancellation: send cancel_prompt now, without awaiting its answer
        with contextlib.suppress(RatepadError):
            _, future = self._submit(codec.CancelPrompt(prompt_id))
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if not self.closed:
            self._apply(self.core.cancelled(prompt_id))

    async def start_prompt(
        self,
        staff: str = "",
        timeout: float = 30.0,
        *,
        claim: bool = True,
        prompt_id: int | None = None,
    ) -> AsyncPromptHandle:
        """Arm the keypad without waiting for the rating (see ``Keypad.start_prompt``)."""
        record, message = self.core.new_prompt(staff, prompt_timeout_ms(timeout), claim, prompt_id)
        handle = AsyncPromptHandle(self, record)
        try:
            await self._checked(message)
        except asyncio.CancelledError:
            self.core.forget_prompt(record)
            self._cancel_soon(record.prompt_id)
            raise
        except BaseException:
            self.core.forget_prompt(record)
            raise
        self._apply(self.core.armed(record))
        return handle

    async def prompt(self, staff: str = "", timeout: float = 30.0) -> Rating:
        """Arm the keypad and await the rating (RatepadTimeout if none). Cancelling the
        awaiting task cancels the prompt on the keypad."""
        handle = await self.start_prompt(staff, timeout)
        try:
            return await handle.wait()
        except RatepadTimeout:
            self.core.forget_prompt(handle.record)
            raise

    async def cancel_prompt(self, prompt_id: int = 0) -> None:
        """Disarm the keypad (0: whatever prompt is armed)."""
        await self._checked(codec.CancelPrompt(prompt_id))
        self._apply(self.core.cancelled(prompt_id))

    async def login(self, staff: str, display_name: str = "") -> None:
        """Log ``staff`` in."""
        await self._checked(codec.Login(staff, display_name))

    async def logout(self, staff: str = "") -> None:
        """Log ``staff`` out (empty: whoever is logged in)."""
        await self._checked(codec.Logout(staff))

    async def get_config(self, key: str = "") -> dict[str, str]:
        """One setting, or every setting for an empty key."""
        return dict((await self._checked(codec.GetConfig(key))).values)

    async def set_config(self, key: str, value: Any) -> None:
        """Change one setting."""
        await self._checked(codec.SetConfig(key, str(value)))

    async def self_test(self) -> CommandResult:
        """Run the keypad's self-test."""
        return await self.command(codec.SelfTest())

    async def key_events(self, enabled: bool = True) -> None:
        """Stream debounced key edges or stop streaming them."""
        await self._checked(codec.KeyEvents(enabled))

    async def reboot(self, maintenance: bool = False) -> None:
        """Restart the keypad."""
        mode = codec.RebootMode.MAINTENANCE if maintenance else codec.RebootMode.NORMAL
        await self._checked(codec.Reboot(mode))

    # -- lifecycle ------------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the link: blocked calls raise DisconnectedError, ``events()`` ends."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        self._apply(self.core.close())
        reader = self._reader
        if reader is not None and reader.is_alive():
            await self.loop.run_in_executor(None, reader.join, 2.0)
        with contextlib.suppress(TransportError, OSError):
            await self.loop.run_in_executor(None, self.transport.close)

    async def __aenter__(self) -> AsyncKeypad:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # nobody may await it (a prompt ended unwatched): not an error then
    else:
        future.set_result(value)


class _Opening:
    """``await open(url)`` gives an AsyncKeypad; ``async with open(url) as kp`` works too."""

    def __init__(self, transport: Transport, options: dict[str, Any]) -> None:
        self._transport = transport
        self._options = options
        self._keypad: AsyncKeypad | None = None

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> AsyncKeypad:
        keypad = AsyncKeypad(self._transport, **self._options)
        try:
            await keypad._link_up()
            await asyncio.wait_for(asyncio.shield(keypad.hello), keypad.connect_timeout)
        except TimeoutError:
            await keypad.close()
            raise RatepadTimeout(
                f"{keypad.transport.url}: no hello from the keypad in {keypad.connect_timeout} s"
            ) from None
        except BaseException:
            await keypad.close()
            raise
        self._keypad = keypad
        return keypad

    async def __aenter__(self) -> AsyncKeypad:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self._keypad is not None:
            await self._keypad.close()


def open(url: str, *, backend: object = None, **options: Any) -> _Opening:
    """Connect to the keypad at ``url`` without blocking the event loop.

    ``kp = await ratepad.aio.open(url)`` or ``async with ratepad.aio.open(url) as kp``;
    ``backend`` as for ``ratepad.open``, the options are those of ``ratepad.Keypad``."""
    return _Opening(open_transport(url, backend), options)
