"""Live fan-out of new ratings and device states to every server instance.

PostgreSQL: the ingest tables' triggers ``NOTIFY ratepad_live`` (delivered at COMMIT, to every
instance that LISTENs on that database: it does not matter which instance took the upload);
one thread per process LISTENs on its own connection and hands each notification to the local
subscribers. SQLite (one instance): the ingest path publishes after its commit, in-process.

An event is ``{"kind": "ratings" | "device", "rows": [...]}`` with database ids for window and
branch (the consumer maps them to codes and filters by the user's subtree).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection

if TYPE_CHECKING:
    from ..ingest.schemas import DeviceIn
    from ..ingest.service import WindowResolver

Event = dict[str, Any]
CHANNEL = "ratepad_live"


class Subscription:
    def __init__(self, feed: Feed, maxsize: int = 10_000) -> None:
        self.feed = feed
        self.queue: queue.Queue[Event] = queue.Queue(maxsize)
        self.dropped = 0

    def get(self, timeout: float) -> Event | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.feed.unsubscribe(self)

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self.get(1.0)
            if event is not None:
                yield event


class Feed:
    """The process's subscribers, fed by a LISTEN thread (PostgreSQL) or by ``publish_all``."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self.listening = threading.Event()

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        with self._lock:
            self._subs.append(sub)
        self._start_listener()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def publish_all(self, events: Sequence[Event]) -> None:
        with self._lock:
            subs = list(self._subs)
        for event in events:
            for sub in subs:
                try:
                    sub.queue.put_nowait(event)
                except queue.Full:  # a consumer that does not read: it misses events
                    sub.dropped += 1

    # -- PostgreSQL ---------------------------------------------------------------------------
    def _start_listener(self) -> None:
        if connection.vendor != "postgresql":
            self.listening.set()
            return
        with self._lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._listen, name="live-listen", daemon=True)
        self._listener.start()
        self.listening.wait(10)

    def _listen(self) -> None:
        import psycopg

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
                with psycopg.connect(
                    **{k: v for k, v in params.items() if v is not None}, autocommit=True
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    backoff = 0.5
                    for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.publish_all([json.loads(note.payload)])
            except psycopg.Error:
                # the database restarted: LISTEN again (events in between are missed; the
                # web reloads its state from the API on reconnect)
                time.sleep(backoff)
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


feed = Feed()
