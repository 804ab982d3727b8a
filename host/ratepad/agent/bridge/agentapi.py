"""The agent as its bridge sees it: what the bridge calls, and nothing else.

``app.Agent`` (the composition root) builds the bridge and hands itself over; the bridge knows
the agent only through these protocols and imports neither ``agent.py`` nor ``app.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...keypad import PromptHandle
from ..config import AgentConfig
from ..hub import Hub
from ..store import Item, Store


class KeypadView(Protocol):
    """One configured keypad (``agent.DeviceWorker``); ``device_json`` shows the rest."""

    @property
    def serial(self) -> str | None: ...


class WriterView(Protocol):
    def submit(self, item: Item) -> None: ...


class AgentApi(Protocol):
    """What the bridge uses of ``app.Agent``."""

    @property
    def config(self) -> AgentConfig: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def store(self) -> Store: ...

    @property
    def writer(self) -> WriterView: ...

    @property
    def workers(self) -> Sequence[KeypadView]: ...

    def device(self, serial: str) -> KeypadView: ...

    def prompt(
        self, serial: str, staff: str = "", timeout: float = 30.0, prompt_id: int | None = None
    ) -> PromptHandle: ...

    def cancel(self, serial: str, prompt_id: int = 0) -> None: ...

    def login(self, serial: str, staff: str, name: str = "") -> None: ...

    def logout(self, serial: str, staff: str = "") -> None: ...

    def health(self) -> dict[str, object]: ...
