"""What the store's readers ask: ratings (oldest or newest first, one by id or by journal seq),
keypads, prompts, the summary, and the tables kept for analysis (quarantine, conflicts,
rejected uploads). Each function takes a read-only connection (``files.reader``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from ... import flags as rating_flags
from .record import RATING_COLUMNS, StoredRating

__all__ = [
    "conflicting",
    "count",
    "devices",
    "prompt",
    "quarantined",
    "ratings",
    "rejected",
    "summary",
    "upload_pending",
]

SELECT_RATINGS = f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings"
QUARANTINE_COLUMNS = ("id", "serial", "journal_seq", "reason", "frame", "message", "received_at_ms")
# ratings after the upload cursor and outbox rows: what the server has not committed yet
UPLOAD_PENDING = (
    "SELECT (SELECT COUNT(*) FROM ratings WHERE id > COALESCE((SELECT last_id FROM"
    " upload_cursor WHERE stream = 'ratings'), 0)) + (SELECT COUNT(*) FROM outbox)"
)


def ratings(
    conn: sqlite3.Connection,
    *,
    since_id: int = 0,
    before: int | None = None,
    serial: str | None = None,
    journal_seq: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> Iterator[StoredRating]:
    """Stored ratings with ``since_id < id < before`` (of keypad ``serial``, with
    ``journal_seq``), oldest first unless ``newest_first``."""
    where: list[str] = ["id > ?"]
    args: list[object] = [since_id]
    wanted = {"id < ?": before, "serial = ?": serial, "journal_seq = ?": journal_seq}
    for clause, value in wanted.items():
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = f"{SELECT_RATINGS} WHERE {' AND '.join(where)} ORDER BY id"
    if newest_first:
        sql += " DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    for row in conn.execute(sql, args):
        yield StoredRating.from_row(row)


def rating(conn: sqlite3.Connection, rating_id: int) -> StoredRating | None:
    row = conn.execute(f"{SELECT_RATINGS} WHERE id = ?", (rating_id,)).fetchone()
    return None if row is None else StoredRating.from_row(row)


def count(conn: sqlite3.Connection, serial: str | None = None) -> int:
    if serial is None:
        row = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()
    else:
        row = conn.execute("SELECT COUNT(*) FROM ratings WHERE serial = ?", (serial,)).fetchone()
    return int(row[0])


def _dicts(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def prompt(conn: sqlite3.Connection, serial: str, prompt_id: int) -> dict[str, Any] | None:
    rows = _dicts(
        conn, "SELECT * FROM prompts WHERE serial = ? AND prompt_id = ?", (serial, prompt_id)
    )
    return rows[0] if rows else None


def device_json(d: dict[str, Any]) -> dict[str, Any]:
    """A row of ``devices`` as JSON: ``connected`` true or false, ``faults`` a list."""
    d["connected"] = bool(d["connected"])
    d["faults"] = (d["faults"] or "").split()
    return d


def devices(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """The latest snapshot of every keypad ever seen, by serial."""
    rows = _dicts(conn, "SELECT * FROM devices ORDER BY serial")
    return {d["serial"]: device_json(d) for d in rows}


def summary(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per keypad: ratings, satisfaction index (mean level value), prompts and response rate."""
    rows = conn.execute(
        "SELECT serial, COUNT(*), AVG(level_value), SUM(flags & ? != 0),"
        " SUM(level_value >= 80) FROM ratings GROUP BY serial ORDER BY serial",
        (int(rating_flags.RatingFlags.UNPROMPTED),),
    ).fetchall()
    prompts = {
        serial: (issued, answered)
        for serial, issued, answered in conn.execute(
            "SELECT serial, SUM(state != 'cancelled' AND issued_at_ms IS NOT NULL),"
            " SUM(state = 'answered' AND issued_at_ms IS NOT NULL)"
            " FROM prompts GROUP BY serial"
        )
    }
    out = []
    for serial, n, index, unprompted, satisfied in rows:
        issued, answered = prompts.get(serial, (0, 0))
        out.append(
            {
                "serial": serial,
                "ratings": n,
                "satisfaction_index": None if index is None else round(index, 1),
                "satisfied_share": round((satisfied or 0) / n, 3) if n else None,
                "unprompted": unprompted or 0,
                "prompts": issued or 0,
                "answered": answered or 0,
                "response_rate": round(answered / issued, 3) if issued else None,
            }
        )
    return out


def upload_pending(conn: sqlite3.Connection) -> int:
    """Ratings and outbox rows not yet committed by the server (0 without uploads)."""
    return int(conn.execute(UPLOAD_PENDING).fetchone()[0])


def rejected(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Items the server refused for good (``upload_rejected``), oldest first, ``item``
    decoded."""
    rows = _dicts(
        conn, "SELECT id, kind, item, error, rejected_at_ms FROM upload_rejected ORDER BY id"
    )
    for r in rows:
        r["item"] = json.loads(r["item"])
    return rows


def quarantined(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The quarantine table, oldest first (``frame`` as hex)."""
    rows = _dicts(conn, f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine ORDER BY id")
    for d in rows:
        d["frame"] = bytes(d["frame"]).hex()
    return rows


def conflicting(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Ratings that came under an already stored (serial, journal seq) with other content."""
    return _dicts(conn, "SELECT * FROM rating_conflicts ORDER BY id")
