"""Fan-out of agent events (stored ratings, status, connected, lost) to live subscribers.

Ratings are published only once committed to the store, so whoever hears of a rating here can
rely on it being stored. ``publish`` runs on the writer thread and never waits: a subscriber that
falls too far behind is cut off (``lagged``) rather than slowing the agent down; an SSE client
then reconnects with ``Last-Event-ID`` and catches up from the store. Sinks (``add_sink``) are
called inline with every event and must only hand it on (the bridge's sink wakes its event loop
once for however many events are waiting, whatever the number of its clients).
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["AgentEvent", "Hub", "Subscription"]


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """``kind``: rating, status, connected or lost; ``data`` is JSON-ready; ``id`` is the
    rating's store id (0 for other kinds)."""

    kind: str
    data: dict[str, Any]
    id: int = 0


class Subscription:
    def __init__(self, hub: Hub, maxsize: int) -> None:
        self._hub = hub
        self._queue: queue.Queue[AgentEvent | None] = queue.Queue(maxsize)
        self.lagged = False
        self.closed = False

    def _offer(self, event: AgentEvent | None) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.lagged = True
            self.closed = True

    def get(self, timeout: float | None = None) -> AgentEvent | None:
        """The next event; None after ``timeout`` or once closed (check ``closed``)."""
        if self.closed and self._queue.empty():
            return None
        try:
            event = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if event is None:
            self.closed = True
        return event

    def __iter__(self) -> Iterator[AgentEvent]:
        while not self.closed:
            event = self.get(0.5)
            if event is not None:
                yield event

    def close(self) -> None:
        self._hub._unsubscribe(self)
        self.closed = True


class Hub:
    def __init__(self, recent: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        # (serial, prompt_id) -> stored rating JSON, for prompt waiters that arrive late
        self._answers: collections.OrderedDict[tuple[str, int], dict[str, Any]] = (
            collections.OrderedDict()
        )
        self._recent = recent
        self._answered = threading.Condition(self._lock)
        self._sinks: list[Callable[[AgentEvent], None]] = []

    def add_sink(self, sink: Callable[[AgentEvent], None]) -> None:
        """Call ``sink(event)`` with every published event (inline: it must not block)."""
        with self._lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[AgentEvent], None]) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def answer(self, serial: str, prompt_id: int) -> dict[str, Any] | None:
        """The stored rating answering ``prompt_id`` on ``serial`` if it came (never waits)."""
        with self._lock:
            return self._answers.get((serial, prompt_id))

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event: AgentEvent) -> None:
        with self._lock:
            if event.kind == "rating" and event.data.get("prompt_id"):
                key = (str(event.data["serial"]), int(event.data["prompt_id"]))
                self._answers[key] = event.data
                while len(self._answers) > self._recent:
                    self._answers.popitem(last=False)
                self._answered.notify_all()
            subs = list(self._subs)
            sinks = list(self._sinks)
        for sink in sinks:
            sink(event)
        for sub in subs:
            sub._offer(event)
            if sub.closed:
                self._unsubscribe(sub)

    def forget(self, serial: str, prompt_id: int) -> None:
        """Drop a remembered answer (the prompt id is issued again)."""
        with self._lock:
            self._answers.pop((serial, prompt_id), None)

    def wait_answer(self, serial: str, prompt_id: int, timeout: float) -> dict[str, Any] | None:
        """The stored rating answering ``prompt_id`` on ``serial``, or None after ``timeout``."""
        key = (serial, prompt_id)
        with self._answered:
            self._answered.wait_for(lambda: key in self._answers, timeout)
            return self._answers.get(key)

    def close(self) -> None:
        """End every subscription (subscribers see ``closed``)."""
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub._offer(None)
