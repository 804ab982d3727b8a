"""The upload outbox: what the uploader reads from the store and marks as sent.

Ratings go by id after a cursor (``upload_cursor``); prompts, staff sessions and keypads are
queued by triggers (migration 3), one ``outbox`` row per changed key, and leave the outbox only
once the server committed the version that was sent. An item the server refuses for good is
kept whole in ``upload_rejected`` so that the rest moves on.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import StoreError
from .files import connect
from .reads import device_json, ratings, upload_pending
from .record import StoredRating

__all__ = ["Outbox", "Queued"]

# (kind, key, seq, the item as the server takes it; None if it is gone)
Queued = tuple[str, str, int, dict[str, Any] | None]
ITEMS = {
    "prompt": "SELECT serial, prompt_id, staff_id, state, issued_at_ms, timeout_ms,"
    " closed_at_ms, rating_seq FROM prompts WHERE serial = ? AND prompt_id = ?",
    "session": "SELECT serial, staff_id, started_at_ms, ended_at_ms FROM staff_sessions"
    " WHERE id = ?",
    "device": "SELECT serial, connected, firmware, state, faults, unacked, presses, staff_id,"
    " updated_at_ms FROM devices WHERE serial = ?",
}


class Outbox:
    """The outbox of the store at ``path``, on a connection of its own (the uploader's)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._errors():
            self._conn = connect(self.path, busy_ms=10_000)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use the store {self.path}: {exc}") from None

    def cursor(self) -> int:
        """The id of the last rating the server committed."""
        with self._errors():
            row = self._conn.execute(
                "SELECT last_id FROM upload_cursor WHERE stream = 'ratings'"
            ).fetchone()
        return int(row[0]) if row else 0

    def next_ratings(self, limit: int) -> list[StoredRating]:
        """Up to ``limit`` ratings after the cursor, oldest first."""
        cursor = self.cursor()
        with self._errors():
            return list(ratings(self._conn, since_id=cursor, limit=limit))

    def next_items(self, limit: int) -> list[Queued]:
        """Up to ``limit`` queued items, oldest change first."""
        with self._errors():
            queued = self._conn.execute(
                "SELECT kind, key, seq FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            # an item may be gone (cannot happen with the triggers): its outbox row is cleared
            return [(kind, key, seq, self._item(kind, key)) for kind, key, seq in queued]

    def _item(self, kind: str, key: str) -> dict[str, Any] | None:
        args: tuple[Any, ...] = (key,)
        if kind == "prompt":
            serial, _, prompt_id = key.rpartition(" ")
            args = (serial, int(prompt_id))
        elif kind == "session":
            args = (int(key),)
        cur = self._conn.execute(ITEMS[kind], args)
        row = cur.fetchone()
        if row is None:
            return None
        item = dict(zip([d[0] for d in cur.description], row, strict=True))
        return device_json(item) if kind == "device" else item

    def pending(self) -> int:
        """Ratings and outbox rows not yet committed by the server."""
        with self._errors():
            return upload_pending(self._conn)

    def mark_uploaded(
        self,
        last_rating_id: int | None,
        sent: list[tuple[str, str, int]],
        rejected: tuple[str, Any, str] | None = None,
    ) -> None:
        """After the server's commit answer: the cursor moves to ``last_rating_id``, the
        ``sent`` outbox rows (kind, key, seq) go (unless they changed since: a newer version is
        sent next time). ``rejected`` (kind, item, error): an item the server refuses for good,
        kept in ``upload_rejected``."""
        with self._errors():
            self._mark(last_rating_id, sent, rejected)

    def _mark(
        self,
        last_rating_id: int | None,
        sent: list[tuple[str, str, int]],
        rejected: tuple[str, Any, str] | None,
    ) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if rejected is not None:
                kind, item, error = rejected
                c.execute(
                    "INSERT INTO upload_rejected (kind, item, error, rejected_at_ms)"
                    " VALUES (?, ?, ?, ?)",
                    (kind, json.dumps(item, ensure_ascii=False), error[:1000], _now_ms()),
                )
            if last_rating_id is not None:
                c.execute(
                    "INSERT INTO upload_cursor VALUES ('ratings', ?) ON CONFLICT (stream)"
                    " DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
                    (last_rating_id,),
                )
            c.executemany("DELETE FROM outbox WHERE kind = ? AND key = ? AND seq = ?", sent)
            c.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()


def _now_ms() -> int:
    return int(time.time() * 1000)
