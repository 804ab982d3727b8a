"""The bridge's prompt book: every prompt it armed, live, on the bridge's event loop.

Rules kept here (the store is written behind, by the writer thread; this book is what the API
answers from, so there is no window in which a prompt just armed is unknown):

* a prompt is in the book before its 202 (or its wait) begins;
* ``timed_out`` at the keypad's own deadline (plus a settle window of ``SETTLE_S`` for a rating
  pressed at the last moment and still on its way), not at the next sweep;
* arming a keypad supersedes the prompt still open on it, at once (the keypad holds one prompt);
* a stored rating answering the prompt closes it as ``answered`` with that rating, even a little
  after ``timed_out`` (the keypad took the press in time; the rating says so);
* issuing an id that exists starts that prompt afresh (its old answer is forgotten).

The store keeps ``superseded`` prompts as ``cancelled`` (its states predate this one); the book
remembers the last ``KEEP`` prompts with their exact state.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any

from ..hub import AgentEvent
from ..store import PromptClosed, now_ms
from .agentapi import AgentApi

__all__ = ["PromptBook", "PromptRecord"]

SETTLE_S = 0.06  # a rating pressed just before the deadline: stored within this much more
KEEP = 10_000


@dataclass
class PromptRecord:
    serial: str
    prompt_id: int
    staff_id: str
    timeout_s: float
    issued_at_ms: int
    deadline: float  # loop time
    state: str = "issued"
    closed_at_ms: int | None = None
    rating: dict[str, Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.state == "issued"

    def as_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "prompt_id": self.prompt_id,
            "state": self.state,
            "staff_id": self.staff_id,
            "issued_at_ms": self.issued_at_ms,
            "timeout_ms": round(self.timeout_s * 1000),
            "closed_at_ms": self.closed_at_ms,
            "rating_seq": self.rating["journal_seq"] if self.rating else None,
            "rating": self.rating,
        }


class PromptBook:
    """Prompts armed through the bridge; call every method on the bridge's loop."""

    def __init__(self, agent: AgentApi, loop: asyncio.AbstractEventLoop) -> None:
        self.agent = agent
        self.loop = loop
        self._book: collections.OrderedDict[tuple[str, int], PromptRecord] = (
            collections.OrderedDict()
        )

    def get(self, serial: str, prompt_id: int) -> PromptRecord | None:
        return self._book.get((serial, prompt_id))

    def armed(self, serial: str, prompt_id: int, staff: str, timeout: float) -> PromptRecord:
        """Record a prompt the keypad has just armed (supersedes the one open before)."""
        for rec in list(self._book.values()):
            if rec.serial == serial and rec.open and rec.prompt_id != prompt_id:
                self._close(rec, "superseded")
        old = self._book.pop((serial, prompt_id), None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        self.agent.hub.forget(serial, prompt_id)
        now = self.loop.time()
        rec = PromptRecord(serial, prompt_id, staff, timeout, now_ms(), now + timeout)
        rec.timer = self.loop.call_at(rec.deadline + SETTLE_S, self._expire, rec)
        self._book[(serial, prompt_id)] = rec
        while len(self._book) > KEEP:
            _, gone = self._book.popitem(last=False)
            if gone.timer is not None:
                gone.timer.cancel()
        return rec

    def _expire(self, rec: PromptRecord) -> None:
        if rec.open:
            self._close(rec, "timed_out")
            self.agent.writer.submit(
                PromptClosed(rec.serial, rec.prompt_id, "timed_out", rec.closed_at_ms or now_ms())
            )

    def cancelled(self, serial: str, prompt_id: int) -> PromptRecord | None:
        """The keypad disarmed ``prompt_id`` (0: whatever was armed)."""
        for rec in reversed(self._book.values()):
            if rec.serial == serial and rec.open and prompt_id in (0, rec.prompt_id):
                self._close(rec, "cancelled")
                return rec
        return None

    def _close(self, rec: PromptRecord, state: str, rating: dict[str, Any] | None = None) -> None:
        rec.state = state
        rec.rating = rating
        rec.closed_at_ms = now_ms()
        if rec.timer is not None and state != "timed_out":
            rec.timer.cancel()
        if state == "superseded":  # the store knows no superseded: cancelled there
            self.agent.writer.submit(
                PromptClosed(rec.serial, rec.prompt_id, "cancelled", rec.closed_at_ms)
            )
        rec.done.set()

    def on_event(self, event: AgentEvent) -> None:
        """A hub event (on the loop): stored ratings answer their prompts."""
        if event.kind != "rating" or not event.data.get("prompt_id"):
            return
        rec = self._book.get((str(event.data["serial"]), int(event.data["prompt_id"])))
        if rec is not None and rec.state in ("issued", "timed_out"):
            if rec.state == "timed_out":
                rec.done = asyncio.Event()  # waiters of the new outcome
            self._close(rec, "answered", event.data)

    def check_early_answer(self, rec: PromptRecord) -> None:
        """A rating stored before the book knew the prompt (a very quick customer)."""
        answer = self.agent.hub.answer(rec.serial, rec.prompt_id)
        if answer is not None and rec.open:
            self._close(rec, "answered", answer)
