"""Live fan-out of new ratings, device states and alerts to every server instance's streams.

PostgreSQL: the ingest tables' triggers (and the alert engine) ``NOTIFY ratepad_live``,
delivered at COMMIT to every instance that LISTENs on that database, whichever took the upload;
each process LISTENs on one asynchronous connection in its event loop. SQLite (one instance):
the ingest path calls ``publish_all`` after its commit, from its worker thread.

Published events are immutable (``LiveEvent``: read-only rows). One dispatcher task in the
server's event loop takes them in order, renders each once per rendering style (``Style``: the
API's flag names, the web's translated labels) into SSE bytes grouped by branch, and hands every
subscriber the groups of its subtree. A subscriber is a list of pending bytes and an
``asyncio.Event``: an open stream costs no thread.

A row carries database ids for window and branch; the dispatcher maps them to codes (learnt
when a stream opens, looked up once for a window created later) and subscribers filter by the
branch ids of their subtree.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection

if TYPE_CHECKING:
    from ..ingest.schemas import DeviceIn
    from ..ingest.service import WindowResolver

Event = dict[str, Any]  # as published: {"kind": "ratings" | "device" | "alert", "rows": [...]}
CHANNEL = "ratepad_live"
KINDS = {"ratings": "rating", "device": "device", "alert": "alert"}  # published → SSE event
log = logging.getLogger("ratepad.live")
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)  # one encoder for every row


@dataclass(frozen=True)
class LiveEvent:
    """One published event; its rows are read-only, shared by every subscriber."""

    kind: str  # the SSE event name: rating, device or alert
    rows: tuple[MappingProxyType[str, Any], ...]

    @property
    def branches(self) -> set[int]:
        return {b for r in self.rows if isinstance(b := r.get("branch"), int)}

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> LiveEvent | None:
        kind = KINDS.get(str(event.get("kind", "")))
        rows = event.get("rows")
        if kind is None or not isinstance(rows, list):
            return None
        # the publisher hands its rows over (fresh from json.loads or from the ingest batch):
        # read-only views of them, no copies
        return cls(kind, tuple(MappingProxyType(r) for r in rows if isinstance(r, dict)))


@dataclass(frozen=True)
class Style:
    """How a stream shows flags: the text of each flag name (the API: the name itself); and
    whether its rating and device rows carry the staff member's name (the web's wall)."""

    flag_text: tuple[tuple[str, str], ...] = ()
    staff_names: bool = False

    @functools.cached_property
    def _text(self) -> dict[str, str]:
        return dict(self.flag_text)

    def flags(self, names: Iterable[str]) -> list[str]:
        return [self._text.get(n, n) for n in names]


class LimitReached(Exception):
    """Too many open streams (for this user, or in this process)."""


@dataclass(eq=False)
class Subscription:
    """One open stream: what the dispatcher has rendered for it, not yet sent."""

    user: int
    branches: frozenset[int]
    kinds: frozenset[str]
    style: Style
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    closed: bool = False  # the server is stopping, or the client fell too far behind
    wake: asyncio.Event | None = None  # created in the event loop

    def take(self) -> bytes:
        out = b"".join(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        return out


GATHER = 0.05  # seconds the dispatcher collects events before it hands them out

# a stream whose client reads slower than this much arrives is ended (it reconnects and
# reloads) rather than buffering without bound
MAX_PENDING_BYTES = 4 * 1024 * 1024


class Feed:
    """The process's live subscribers and the dispatcher that feeds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # subscribers are added from the views' threads
        self._subs: set[Subscription] = set()
        self._by_branch: dict[int, set[Subscription]] = {}  # who covers a branch
        self._per_user: dict[int, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[Sequence[LiveEvent]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Event | None = None
        self._stopping = False
        self.branch_codes: dict[int, str] = {}
        self.window_codes: dict[int, str] = {}
        self.staff_names: dict[str, str] = {}  # looked up once per staff id (for the wall)
        self._naming = 0  # open streams whose style wants staff names

    # -- subscribers (any thread) ---------------------------------------------------------------
    def subscribe(
        self,
        user: int,
        branches: Mapping[int, str],
        windows: Mapping[int, str],
        kinds: Iterable[str],
        style: Style,
    ) -> Subscription:
        """A new subscription, or ``LimitReached``; the codes of the subtree are learnt."""
        total, per_user = settings.RATEPAD_LIVE_MAX_STREAMS, settings.RATEPAD_LIVE_MAX_PER_USER
        with self._lock:
            if self._stopping:
                raise LimitReached("the server is stopping")
            if len(self._subs) >= total:
                raise LimitReached(f"this server has its {total} live streams open")
            if self._per_user.get(user, 0) >= per_user:
                raise LimitReached(f"you have {per_user} live streams open (close one)")
            sub = Subscription(user, frozenset(branches), frozenset(kinds), style)
            self._subs.add(sub)
            for branch in sub.branches:
                self._by_branch.setdefault(branch, set()).add(sub)
            self._per_user[user] = self._per_user.get(user, 0) + 1
            self._naming += style.staff_names
            self.branch_codes.update(branches)
            self.window_codes.update(windows)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
                for branch in sub.branches:
                    self._by_branch[branch].discard(sub)
                    if not self._by_branch[branch]:
                        del self._by_branch[branch]
                self._naming -= sub.style.staff_names
                left = self._per_user.pop(sub.user) - 1
                if left:
                    self._per_user[sub.user] = left

    def open_streams(self) -> int:
        with self._lock:
            return len(self._subs)

    async def wait(self, sub: Subscription, timeout: float) -> bytes | None:
        """What arrived for ``sub`` (waiting at most ``timeout``): b"" if nothing, None once
        the subscription is closed."""
        if sub.wake is None:
            sub.wake = asyncio.Event()
        if not sub.pending and not sub.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), timeout)
        sub.wake.clear()
        if sub.closed:
            return None
        return sub.take()

    async def start(self) -> None:
        """Run the dispatcher (and on PostgreSQL the LISTEN) in this event loop; returns once
        events can be received."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._inbox = asyncio.Queue()
            self._ready = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._dispatch(), name="live-dispatch"))
            if connection.vendor == "postgresql":
                self._tasks.append(asyncio.create_task(self._listen(), name="live-listen"))
            else:
                self._ready.set()
        assert self._ready is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 10)

    def close_all(self) -> None:
        """End every stream (the server stops): from any thread."""
        with self._lock:
            self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_all)

    def _close_all(self) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.closed = True
            if sub.wake is not None:
                sub.wake.set()
        for task in self._tasks:
            task.cancel()

    # -- publishing (any thread) ----------------------------------------------------------------
    def publish_all(self, events: Sequence[Event]) -> None:
        loop, inbox = self._loop, self._inbox
        if loop is None or inbox is None or not self._subs:
            return  # no stream has ever opened in this process, or none is open
        frozen = [e for e in map(LiveEvent.of, events) if e is not None]
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            loop.call_soon_threadsafe(inbox.put_nowait, frozen)

    # -- the dispatcher (event loop) ------------------------------------------------------------
    async def _dispatch(self) -> None:
        assert self._inbox is not None
        while True:
            events = list(await self._inbox.get())
            # a batch's ratings arrive as several notifications within milliseconds: gather
            # them, and whatever else comes meanwhile, into one round (one write per stream)
            await asyncio.sleep(GATHER)
            while not self._inbox.empty():
                events.extend(self._inbox.get_nowait())
            unknown = {
                r["window"]
                for e in events
                for r in e.rows
                if isinstance(r.get("window"), int) and r["window"] not in self.window_codes
            }
            if unknown:  # a window created after the streams opened
                from asgiref.sync import sync_to_async

                with contextlib.suppress(Exception):
                    self.window_codes.update(await sync_to_async(_window_codes)(unknown))
            staff = {
                s
                for e in events
                if self._naming and e.kind in ("rating", "device")
                for r in e.rows
                if isinstance(s := r.get("staff_id"), str) and s and s not in self.staff_names
            }
            if staff:  # a staff member's first event since the process started
                from asgiref.sync import sync_to_async

                with contextlib.suppress(Exception):
                    self.staff_names.update(await sync_to_async(_staff_names)(staff))
            try:
                self._fan_out(events)
            except Exception:  # a malformed row must not stop the live feed
                log.exception("live: an event could not be sent")

    def _fan_out(self, events: Sequence[LiveEvent]) -> None:
        woken: set[Subscription] = set()
        for event in events:
            with self._lock:
                covering = {sub for b in event.branches for sub in self._by_branch.get(b, ())}
            subs = [s for s in covering if event.kind in s.kinds and not s.closed]
            rendered: dict[Style, dict[int, bytes]] = {}
            for sub in subs:
                if sub.style not in rendered:  # once per style, whatever the number of streams
                    rendered[sub.style] = self._render(event, sub.style)
                for branch, chunk in rendered[sub.style].items():
                    if branch in sub.branches:
                        sub.pending.append(chunk)
                        sub.pending_bytes += len(chunk)
                        woken.add(sub)
        for sub in woken:
            if sub.pending_bytes > MAX_PENDING_BYTES:
                sub.closed = True
            if sub.wake is not None:
                sub.wake.set()

    def _render(self, event: LiveEvent, style: Style) -> dict[int, bytes]:
        """The event's rows as SSE bytes, per branch id, with codes for ids."""
        from ratepad.flags import names

        parts: dict[int, list[bytes]] = {}
        for row in event.rows:
            branch = row.get("branch")
            if not isinstance(branch, int) or branch not in self.branch_codes:
                continue
            out = row.copy()  # the shared row stays as it is
            out["branch"] = self.branch_codes[branch]
            window = row.get("window")
            if isinstance(window, int):
                out["window"] = self.window_codes.get(window, str(window))
            if event.kind == "rating":
                out["flags"] = style.flags(names(int(row.get("flags") or 0)))
            if style.staff_names and event.kind in ("rating", "device"):
                out["staff_name"] = self.staff_names.get(str(row.get("staff_id") or ""), "")
            data = _JSON.encode(out)
            parts.setdefault(branch, []).append(f"event: {event.kind}\ndata: {data}\n\n".encode())
        return {branch: b"".join(chunks) for branch, chunks in parts.items()}

    # -- PostgreSQL -----------------------------------------------------------------------------
    async def _listen(self) -> None:
        import psycopg

        assert self._ready is not None
        db = settings.DATABASES["default"]
        params = {
            "dbname": db["NAME"],
            "user": db["USER"] or None,
            "password": db["PASSWORD"] or None,
            "host": db["HOST"] or None,
            "port": db["PORT"] or None,
            **db.get("OPTIONS", {}),
        }
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **{k: v for k, v in params.items() if v is not None}, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    backoff = 0.5
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            event = LiveEvent.of(json.loads(note.payload))
                            if event is not None and self._inbox is not None:
                                self._inbox.put_nowait([event])
            except psycopg.Error as exc:
                # the database restarted: LISTEN again (events in between are missed; the
                # web reloads its state on reconnect)
                log.warning("live: LISTEN failed (%s); again in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    # -- SQLite -------------------------------------------------------------------------------
    @staticmethod
    def events_for_sqlite(
        rows: Sequence[Sequence[Any]],
        devices: Sequence[DeviceIn],
        branch_id: int,
        resolver: WindowResolver,
    ) -> list[Event]:
        """The same events the PostgreSQL triggers send, built from an ingest batch."""
        events: list[Event] = []
        for i in range(0, len(rows), 40):
            events.append(
                {
                    "kind": "ratings",
                    "rows": [
                        {
                            "serial": r[0],
                            "journal_seq": r[1],
                            "window": r[12],
                            "branch": r[13],
                            "score": r[6],
                            "level_value": r[8],
                            "staff_id": r[9],
                            "time": r[4].isoformat(),
                            "flags": r[11],
                        }
                        for r in rows[i : i + 40]
                    ],
                }
            )
        for d in devices:
            from ..ingest.service import from_ms

            at = from_ms(d.updated_at_ms)
            events.append(
                {
                    "kind": "device",
                    "rows": [
                        {
                            "serial": d.serial,
                            "branch": branch_id,
                            "window": resolver.resolve(d.serial, at)[0],
                            "connected": d.connected,
                            "state": d.state,
                            "faults": " ".join(d.faults),
                            "staff_id": d.staff_id,
                            "time": at.isoformat(),
                        }
                    ],
                }
            )
        return events


def _window_codes(ids: set[int]) -> dict[int, str]:
    from django.db import connections

    from ..org.models import Window

    try:
        return dict(Window.objects.filter(pk__in=ids).values_list("pk", "code"))
    finally:
        connections.close_all()  # a thread of the loop's default pool, not a request's


def _staff_names(ids: set[str]) -> dict[str, str]:
    """Names of these staff ids ("" for an id the organisation does not know, so that it is
    not looked up again)."""
    from django.db import connections

    from ..org.models import Staff

    try:
        found = dict(Staff.objects.filter(staff_id__in=ids).values_list("staff_id", "name"))
        return {s: found.get(s, "") for s in ids}
    finally:
        connections.close_all()  # a thread of the loop's default pool, not a request's


feed = Feed()

__all__ = ["CHANNEL", "Feed", "LimitReached", "LiveEvent", "Style", "Subscription", "feed"]
