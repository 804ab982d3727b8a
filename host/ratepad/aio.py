"""The asyncio facade: the same Keypad core, awaitable.

    async with await ratepad.aio.open("sim://K1") as kp:
        rating = await kp.prompt("S001", timeout=30)
        await kp.confirm(rating)
        async for event in kp.events():
            ...

Blocking work (the transport, waiting for answers) runs in worker threads; the session and
the rules are exactly those of the synchronous ``Keypad``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .events import CommandResult, Connected, Event, Rating, Status
from .keypad import Keypad, PromptHandle
from .transports import open_transport

__all__ = ["AsyncKeypad", "open"]


class AsyncKeypad:
    """An open keypad for asyncio code (see ``ratepad.Keypad`` for the semantics)."""

    def __init__(self, keypad: Keypad) -> None:
        self.sync = keypad

    @property
    def info(self) -> Connected | None:
        return self.sync.info

    @property
    def status(self) -> Status | None:
        return self.sync.status

    async def next_event(self, timeout: float | None = None) -> Event | None:
        return await asyncio.to_thread(self.sync.next_event, timeout)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self.next_event(0.5)
            if event is not None:
                yield event

    async def confirm(self, rating: Rating) -> None:
        await asyncio.to_thread(self.sync.confirm, rating)

    async def start_prompt(self, staff: str = "", timeout: float = 30.0) -> PromptHandle:
        return await asyncio.to_thread(self.sync.start_prompt, staff, timeout)

    async def prompt(self, staff: str = "", timeout: float = 30.0) -> Rating:
        return await asyncio.to_thread(self.sync.prompt, staff, timeout)

    async def cancel_prompt(self, prompt_id: int = 0) -> None:
        await asyncio.to_thread(self.sync.cancel_prompt, prompt_id)

    async def login(self, staff: str, display_name: str = "") -> None:
        await asyncio.to_thread(self.sync.login, staff, display_name)

    async def logout(self, staff: str = "") -> None:
        await asyncio.to_thread(self.sync.logout, staff)

    async def get_config(self, key: str = "") -> dict[str, str]:
        return await asyncio.to_thread(self.sync.get_config, key)

    async def set_config(self, key: str, value: Any) -> None:
        await asyncio.to_thread(self.sync.set_config, key, value)

    async def self_test(self) -> CommandResult:
        return await asyncio.to_thread(self.sync.self_test)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncKeypad:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open(url: str, **options: Any) -> AsyncKeypad:
    """Connect to the keypad at ``url`` without blocking the event loop."""
    keypad = await asyncio.to_thread(Keypad, open_transport(url), **options)
    return AsyncKeypad(keypad)
