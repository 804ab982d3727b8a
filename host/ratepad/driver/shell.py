"""What every shell around the driver core shows the same way, whatever moves its bytes (a
reader thread in ``ratepad.Keypad``, the event loop in ``ratepad.aio``): the core it drives, the
keypad's identity and state read from that core, and the listeners it calls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ..errors import DisconnectedError
from ..events import Connected, Event, Status
from ..transports import Transport
from ..wire.session import Session
from .core import DriverCore, ReconnectPolicy, Watchdog

Listener = Callable[[Event], None]


class CoreShell:
    """The state half of a driver facade: ``core`` holds the rules, this reads them out."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Callable[[], int],
        software: str,
        reconnect: ReconnectPolicy | str,
        listeners: tuple[Listener, ...] | list[Listener],
        watchdog: Watchdog | None,
    ) -> None:
        self.transport = transport
        self.core = DriverCore(
            url=transport.url,
            clock=clock,
            software=software,
            reconnect=ReconnectPolicy.of(reconnect),
            watchdog=watchdog,
        )
        self._listeners: list[Listener] = list(listeners)
        self._closed = False

    @property
    def info(self) -> Connected:
        """The keypad's hello (who it is), refreshed on every connection."""
        if self.core.info is None:
            raise DisconnectedError(f"{self.transport.url}: not connected yet")
        return self.core.info

    @property
    def status(self) -> Status | None:
        """The keypad's latest status, if one came."""
        return self.core.status

    @property
    def session(self) -> Session | None:
        """The link session of the current link (the core's)."""
        return self.core.session

    @property
    def reconnect(self) -> ReconnectPolicy:
        """The reconnect policy."""
        return self.core.reconnect

    @property
    def connected(self) -> bool:
        """True while the link is up and the keypad has said hello."""
        return self.core.connected and not self._closed

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called or the link ended for good."""
        return self._closed or self.core.ended

    @property
    def last_prompt_id(self) -> int:
        """The id of the prompt armed last (0: none yet)."""
        return self.core.last_prompt_id

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event ``events()`` gets (on the reader thread of a
        ``Keypad``, on the loop of an ``AsyncKeypad``). A listener that raises is logged and
        kept. Remove it with ``remove_listener``."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)
