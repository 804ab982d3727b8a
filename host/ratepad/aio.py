"""The asyncio facade: the same Keypad core, awaitable, without a thread per call.

    kp = await ratepad.aio.open("sim://K1")
    async with kp:
        rating = await kp.prompt("S001", timeout=30)
        await kp.confirm(rating)
        async for event in kp.events():      # ends when the keypad is closed
            ...

One reader thread per keypad (the same as the synchronous ``Keypad``) feeds the event loop:
commands are written at once and their answers resolve futures on the loop
(``loop.call_soon_threadsafe``), so any number of concurrent prompts costs no thread and no
executor slot. Cancelling an awaited ``prompt()`` cancels the prompt on the keypad. Every method
of ``ratepad.Keypad`` has its twin here, with the same rules (see ``ratepad.keypad``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from .errors import CommandError, RatepadTimeout
from .events import CommandResult, Connected, Event, Rating, Status
from .keypad import Keypad, Listener, Pending, PromptHandle
from .transports import open_transport
from .wire import codec

__all__ = ["AsyncKeypad", "AsyncPromptHandle", "open"]

T = TypeVar("T")


async def _wait(pending: Pending[T], timeout: float | None) -> T:
    """Await a ``Pending`` filled by the reader thread (asyncio.TimeoutError after timeout)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def done() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(_settle, future)

    pending.add_done_callback(done)
    await asyncio.wait_for(future, timeout)
    return pending.result()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncPromptHandle:
    """A prompt armed on the keypad; ``await wait()`` gives its rating."""

    def __init__(self, keypad: AsyncKeypad, handle: PromptHandle) -> None:
        self.keypad = keypad
        self.sync = handle

    @property
    def prompt_id(self) -> int:
        return self.sync.prompt_id

    @property
    def state(self) -> str:
        """issued, answered, timed_out, cancelled or superseded."""
        return self.sync.state

    @property
    def answered(self) -> bool:
        return self.sync.answered

    async def wait(self, timeout: float | None = None) -> Rating:
        """The rating; RatepadTimeout by the deadline. Cancelling this cancels the prompt."""
        limit = self.sync.deadline - time.monotonic() if timeout is None else timeout
        try:
            return await _wait(self.sync.outcome, max(limit, 0))
        except TimeoutError:
            raise RatepadTimeout(f"no rating for prompt {self.prompt_id}") from None
        except asyncio.CancelledError:
            self.keypad._cancel_soon(self.prompt_id)
            raise

    async def cancel(self) -> None:
        """Disarm the keypad for this prompt."""
        await self.keypad.cancel_prompt(self.prompt_id)


class AsyncKeypad:
    """An open keypad for asyncio code (see ``ratepad.Keypad`` for the semantics)."""

    def __init__(self, keypad: Keypad) -> None:
        self.sync = keypad

    @property
    def info(self) -> Connected:
        """The keypad's hello (who it is)."""
        return self.sync.info

    @property
    def status(self) -> Status | None:
        """The latest status, if one came."""
        return self.sync.status

    @property
    def connected(self) -> bool:
        """True while the link is up."""
        return self.sync.connected

    @property
    def closed(self) -> bool:
        """True once closed (or the link ended for good)."""
        return self.sync.closed

    def add_listener(self, listener: Listener) -> None:
        """Like ``Keypad.add_listener`` (called on the reader thread, not the loop)."""
        self.sync.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Like ``Keypad.remove_listener``."""
        self.sync.remove_listener(listener)

    # -- events ---------------------------------------------------------------------------------
    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once closed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            event = self.sync.take_event()
            if event is not None or self.sync.closed:
                return event
            future: asyncio.Future[None] = loop.create_future()

            def wake(future: asyncio.Future[None] = future) -> None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, future)

            self.sync.add_event_waiter(wake)
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return self.sync.take_event()
            try:
                await asyncio.wait_for(future, left)
            except TimeoutError:
                return self.sync.take_event()

    async def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """Events as they come; ends on close (or after ``timeout`` s without one)."""
        while True:
            event = await self.next_event(timeout)
            if event is None:
                return
            yield event

    async def confirm(self, rating: Rating) -> None:
        """ACK a stored rating (writes one frame)."""
        self.sync.confirm(rating)

    # -- commands -------------------------------------------------------------------------------
    async def command(
        self, message: codec.HostMessage, timeout: float | None = None
    ) -> CommandResult:
        """Send a command and await its result (RatepadTimeout if none comes)."""
        limit = self.sync.command_timeout if timeout is None else timeout
        if not self.sync.connected and not self.sync.closed:  # reconnecting: wait a little
            end = time.monotonic() + limit
            while not self.sync.connected and not self.sync.closed and time.monotonic() < end:
                await asyncio.sleep(0.02)
        pending = self.sync.submit(message)
        try:
            return await _wait(pending, limit)
        except TimeoutError:
            raise RatepadTimeout(f"no answer to {message.type_name} in time") from None

    async def _checked(self, message: codec.HostMessage) -> CommandResult:
        result = await self.command(message)
        if not result.ok:
            raise CommandError(message.type_name, result)
        return result

    def _cancel_soon(self, prompt_id: int) -> None:
        # on cancellation: send cancel_prompt now, without awaiting its answer
        with contextlib.suppress(Exception):
            self.sync.submit(codec.CancelPrompt(prompt_id))
        self.sync.prompt_cancelled(prompt_id)

    async def start_prompt(
        self,
        staff: str = "",
        timeout: float = 30.0,
        *,
        claim: bool = True,
        prompt_id: int | None = None,
    ) -> AsyncPromptHandle:
        """Arm the keypad without waiting for the rating (see ``Keypad.start_prompt``)."""
        handle, message = self.sync.new_prompt(staff, timeout, claim, prompt_id)
        self.sync._prompts[handle.prompt_id] = handle
        try:
            await self._checked(message)
        except asyncio.CancelledError:
            self.sync._prompts.pop(handle.prompt_id, None)
            self._cancel_soon(handle.prompt_id)
            raise
        except BaseException:
            self.sync._prompts.pop(handle.prompt_id, None)
            raise
        self.sync.armed(handle)
        return AsyncPromptHandle(self, handle)

    async def prompt(self, staff: str = "", timeout: float = 30.0) -> Rating:
        """Arm the keypad and await the rating (RatepadTimeout if none). Cancelling the
        awaiting task cancels the prompt on the keypad."""
        handle = await self.start_prompt(staff, timeout)
        try:
            return await handle.wait()
        except RatepadTimeout:
            self.sync._prompts.pop(handle.prompt_id, None)
            raise

    async def cancel_prompt(self, prompt_id: int = 0) -> None:
        """Disarm the keypad (0: whatever prompt is armed)."""
        await self._checked(codec.CancelPrompt(prompt_id))
        self.sync.prompt_cancelled(prompt_id)

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
        if not self.sync.begin_close():
            return
        thread = self.sync._thread
        end = time.monotonic() + 2
        while thread.is_alive() and time.monotonic() < end:
            await asyncio.sleep(0.01)
        self.sync.finish_close()

    async def __aenter__(self) -> AsyncKeypad:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Opening:
    """``await open(url)`` gives an AsyncKeypad; ``async with open(url) as kp`` works too."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._keypad: AsyncKeypad | None = None

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> AsyncKeypad:
        keypad: Keypad = self._factory()
        try:
            await _wait(keypad.hello, keypad.connect_timeout)
        except TimeoutError:
            await AsyncKeypad(keypad).close()
            raise RatepadTimeout(
                f"{keypad.transport.url}: no hello from the keypad in {keypad.connect_timeout} s"
            ) from None
        except BaseException:
            await AsyncKeypad(keypad).close()
            raise
        self._keypad = AsyncKeypad(keypad)
        return self._keypad

    async def __aenter__(self) -> AsyncKeypad:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self._keypad is not None:
            await self._keypad.close()


def open(url: str, *, backend: object = None, **options: Any) -> _Opening:
    """Connect to the keypad at ``url`` without blocking the event loop.

    ``kp = await ratepad.aio.open(url)`` or ``async with ratepad.aio.open(url) as kp``;
    ``backend`` as for ``ratepad.open``, the options are those of ``ratepad.Keypad``."""
    transport = open_transport(url, backend)
    return _Opening(lambda: Keypad(transport, block=False, **options))
