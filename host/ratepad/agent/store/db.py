"""The ``Store``: one SQLite file, one writer connection (``apply``), a fresh read-only
connection for every read."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ...events import Rating
from ..levels import LevelMapping
from . import reads
from .errors import ROW_ERRORS, BadStoreError, StoreError, StoreRowError
from .files import connect, create_owner_only, narrow_to_owner, reader
from .record import StoredRating
from .schema import check_version, check_writable, migrate, version
from .writes import EXPIRE_PROMPTS, Counter, Item, Quarantined, now_ms, quarantine, write_item

__all__ = ["Store"]

T = TypeVar("T")


class Store:
    """The ratings store at ``path`` (created and migrated on first use).

    One thread writes (``apply``); any thread may read (``ratings``, ``devices`` ...), each read
    on a fresh read-only connection.
    """

    def __init__(
        self,
        path: str | Path,
        mapping: LevelMapping | None = None,
        *,
        synchronous: str = "FULL",
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.mapping = mapping or LevelMapping()
        self.read_only = read_only
        self._counter = Counter()
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise BadStoreError(f"no store at {self.path}")
        if not read_only:
            with contextlib.suppress(OSError):  # sqlite3 reports what is really wrong
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                create_owner_only(self.path)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise BadStoreError(f"cannot open the store {self.path}: {reason}") from None
        try:
            self._conn = connect(self.path, read_only)
            if read_only:
                check_version(version(self._conn, self.path), self.path, read_only)
            else:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute(f"PRAGMA synchronous = {synchronous}")
                migrate(self._conn, self.path)
                check_writable(self._conn)
                narrow_to_owner(self.path)
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise BadStoreError(f"cannot open the store {self.path}: {exc}") from None
        except StoreError:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise

    @property
    def conflicts(self) -> int:
        """Ratings kept in rating_conflicts by this process."""
        return self._counter.conflicts

    @property
    def schema_version(self) -> int:
        with self._lock:
            return version(self._conn, self.path)

    # -- writing ------------------------------------------------------------------------------
    def apply(
        self, batch: Sequence[Item], received_at_ms: int | None = None
    ) -> list[StoredRating | Quarantined | None]:
        """Write ``batch`` in one transaction; returns once it is committed.

        The result has one entry per item: for a rating, its new row, ``Quarantined`` if it was
        kept in the quarantine table (a value out of range), or None if it was already stored (a
        retransmission); None for other items. Raises StoreRowError if the database refused
        one item's values, StoreError if it could not write at all (nothing of the batch is
        stored then)."""
        now = now_ms() if received_at_ms is None else received_at_ms
        out: list[StoredRating | Quarantined | None] = []
        with self._transaction(batch, out) as c:
            for item in batch:
                out.append(write_item(c, item, now, self.mapping, self._counter))
        return out

    def quarantine(
        self, rating: Rating, reason: str, received_at_ms: int | None = None
    ) -> Quarantined:
        """Keep ``rating`` raw in the quarantine table, with ``reason``, in its own transaction
        (a rating the database refused as a rating). Raises StoreError if that fails too."""
        now = now_ms() if received_at_ms is None else received_at_ms
        with self._transaction() as c:
            return quarantine(c, rating, reason, now)

    @contextlib.contextmanager
    def _transaction(
        self, batch: Sequence[Item] = (), out: list[Any] | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One writer transaction. With ``batch``: an error from an item's values while
        ``out`` holds the results of the items before it is that item's (StoreRowError)."""
        with self._lock:
            c = self._conn
            writing = False  # True while the items are written (item len(out) fails)
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    writing = out is not None
                    yield c
                    writing = False
                    c.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        c.execute("ROLLBACK")
                    raise
            except ROW_ERRORS as exc:
                if not writing or out is None:  # not an item's values (the commit itself)
                    raise StoreError(f"cannot write the store {self.path}: {exc}") from None
                index = len(out)
                raise StoreRowError(
                    f"cannot store item {index + 1} of {len(batch)}: {type(exc).__name__}: {exc}",
                    index,
                ) from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None

    def expire_prompts(self, now: int | None = None, grace_ms: int = 5000) -> int:
        """Mark prompts past their timeout (plus ``grace_ms``) and still open as timed out."""
        with self._lock:
            try:
                cur = self._conn.execute(EXPIRE_PROMPTS, (grace_ms, now or now_ms()))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
            return cur.rowcount

    # -- reading ------------------------------------------------------------------------------
    def ratings(
        self, since_id: int = 0, limit: int | None = 100, serial: str | None = None
    ) -> list[StoredRating]:
        """Stored ratings with ``id > since_id``, oldest first."""
        return list(self.iter_ratings(since_id, limit, serial))

    def iter_ratings(
        self, since_id: int = 0, limit: int | None = None, serial: str | None = None
    ) -> Iterator[StoredRating]:
        with reader(self.path) as conn:
            yield from reads.ratings(conn, since_id=since_id, limit=limit, serial=serial)

    def newest_ratings(
        self, limit: int, serial: str | None = None, since: int = 0, before: int | None = None
    ) -> list[StoredRating]:
        """Up to ``limit`` ratings with ``since < id < before``, newest first."""
        return self._read(
            lambda c: list(
                reads.ratings(
                    c, since_id=since, before=before, serial=serial, limit=limit, newest_first=True
                )
            )
        )

    def rating(self, rating_id: int) -> StoredRating | None:
        return self._read(reads.rating, rating_id)

    def rating_by_seq(self, serial: str, journal_seq: int) -> StoredRating | None:
        return self._read(
            lambda c: next(reads.ratings(c, serial=serial, journal_seq=journal_seq), None)
        )

    def count(self, serial: str | None = None) -> int:
        return self._read(reads.count, serial)

    def prompt(self, serial: str, prompt_id: int) -> dict[str, Any] | None:
        return self._read(reads.prompt, serial, prompt_id)

    def devices(self) -> dict[str, dict[str, Any]]:
        """The latest snapshot of every keypad ever seen, by serial."""
        return self._read(reads.devices)

    def summary(self) -> list[dict[str, Any]]:
        """Per keypad: ratings, satisfaction index (mean level value), prompts and response rate."""
        return self._read(reads.summary)

    def upload_pending(self) -> int:
        """Ratings and outbox rows not yet committed by the server (0 without uploads)."""
        return self._read(reads.upload_pending)

    def rejected(self) -> list[dict[str, Any]]:
        """Items the server refused for good (``upload_rejected``), oldest first."""
        return self._read(reads.rejected)

    def quarantined(self) -> list[dict[str, Any]]:
        """The quarantine table, oldest first (``frame`` as hex)."""
        return self._read(reads.quarantined)

    def conflicting(self) -> list[dict[str, Any]]:
        """Ratings that came under an already stored (serial, journal seq) with other content."""
        return self._read(reads.conflicting)

    def _read(self, query: Callable[..., T], *args: Any) -> T:
        """``query(connection, *args)`` on a read-only connection of its own."""
        with reader(self.path) as conn:
            return query(conn, *args)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
