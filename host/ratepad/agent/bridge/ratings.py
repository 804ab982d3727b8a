"""Reads of stored ratings the store does not offer: newest first, and one by id.

Read-only SQLite connections of their own, as the store's readers (``Store._reader``) do: WAL
lets them read while the writer writes, and they never hold the writer's lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..schema import RATING_COLUMNS
from ..store import StoredRating, StoreError

__all__ = ["newest_ratings", "rating_by_id"]


def _query(path: Path, sql: str, args: list[Any]) -> list[StoredRating]:
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            return [StoredRating.from_row(row) for row in conn.execute(sql, args)]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from None


def newest_ratings(
    path: Path, limit: int, serial: str | None, since: int = 0, before: int | None = None
) -> list[StoredRating]:
    """Up to ``limit`` ratings with ``since < id < before``, newest first."""
    sql = f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings WHERE id > ?"
    args: list[Any] = [since]
    if before is not None:
        sql += " AND id < ?"
        args.append(before)
    if serial is not None:
        sql += " AND serial = ?"
        args.append(serial)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return _query(path, sql, args)


def rating_by_id(path: Path, rating_id: int) -> StoredRating | None:
    rows = _query(
        path, f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings WHERE id = ?", [rating_id]
    )
    return rows[0] if rows else None


def rating_by_seq(path: Path, serial: str, journal_seq: int) -> StoredRating | None:
    rows = _query(
        path,
        f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings WHERE serial = ? AND journal_seq = ?",
        [serial, journal_seq],
    )
    return rows[0] if rows else None
