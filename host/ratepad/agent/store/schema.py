"""The store's tables, as numbered migrations, and the migrating of a store file.

``schema_version`` records which migrations a store has; a migration is never edited once
released, only new ones appended (the rating tables' columns come from ``record.py``, by the
version that added them). A store written by a newer ratepad is refused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

from .errors import BadStoreError
from .record import rating_columns_ddl

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "statements", "version"]

# the outbox's key of each kind (``outbox.Outbox`` reads it back)
OUTBOX_KEYS = {
    "prompt": "NEW.serial || ' ' || NEW.prompt_id",
    "session": "NEW.id",
    "device": "NEW.serial",
}
# what makes a keypad's row worth sending again (not every heartbeat's counters)
DEVICE_CHANGED = (
    "NEW.connected IS NOT OLD.connected OR NEW.state IS NOT OLD.state"
    " OR NEW.faults IS NOT OLD.faults OR NEW.staff_id IS NOT OLD.staff_id"
    " OR NEW.firmware IS NOT OLD.firmware"
)


def _queued(kind: str, table: str, changed_when: str = "") -> str:
    """The triggers that queue a row of ``table`` in the outbox when it is inserted, and when
    it is updated (``changed_when``: only then); a later change bumps its ``seq``."""
    out = []
    for name, event, when in (("new", "INSERT", ""), ("changed", "UPDATE", changed_when)):
        out.append(
            f"CREATE TRIGGER outbox_{kind}_{name} AFTER {event} ON {table}"
            + (f" WHEN {when}" if when else "")
            + f" BEGIN INSERT INTO outbox VALUES ('{kind}', {OUTBOX_KEYS[kind]},"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))"
            " ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq; END;"
        )
    return "\n".join(out)


EXISTING_ID = "INTEGER NOT NULL REFERENCES ratings (id)"  # rating_conflicts: the stored one
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE ratings (
            {RATINGS},
            UNIQUE (serial, journal_seq)
        );
        CREATE TABLE rating_conflicts (
            {CONFLICTS},
            UNIQUE (serial, journal_seq, boot_id, uptime_ms)
        );
        CREATE INDEX ratings_by_time ON ratings (time_ms);
        CREATE INDEX ratings_by_staff ON ratings (staff_id, time_ms);
        CREATE TABLE prompts (
            serial        TEXT    NOT NULL,
            prompt_id     INTEGER NOT NULL,
            staff_id      TEXT    NOT NULL DEFAULT '',
            issued_at_ms  INTEGER,
            timeout_ms    INTEGER,
            state         TEXT    NOT NULL
                CHECK (state IN ('issued', 'answered', 'timed_out', 'cancelled')),
            closed_at_ms  INTEGER,
            rating_seq    INTEGER,
            PRIMARY KEY (serial, prompt_id)
        );
        CREATE INDEX prompts_by_state ON prompts (state, issued_at_ms);
        CREATE TABLE devices (
            serial        TEXT PRIMARY KEY,
            url           TEXT    NOT NULL,
            connected     INTEGER NOT NULL,
            firmware      TEXT,
            board         TEXT,
            key_count     INTEGER,
            boot_id       INTEGER,
            state         TEXT,
            faults        TEXT,
            unacked       INTEGER,
            presses       INTEGER,
            unprompted    INTEGER,
            repeats       INTEGER,
            multi_key     INTEGER,
            stuck_keys    INTEGER,
            staff_id      TEXT,
            acked_seq     INTEGER,
            updated_at_ms INTEGER NOT NULL
        );
        """.format(
            RATINGS=rating_columns_ddl(1),
            CONFLICTS=rating_columns_ddl(1, f"{'existing_id':<14} {EXISTING_ID}"),
        ),
    ),
    (
        2,
        """
        CREATE TABLE quarantine (
            id             INTEGER PRIMARY KEY,
            serial         TEXT    NOT NULL,
            journal_seq    INTEGER NOT NULL,
            reason         TEXT    NOT NULL,
            frame          BLOB    NOT NULL,
            message        TEXT    NOT NULL,
            received_at_ms INTEGER NOT NULL,
            UNIQUE (serial, journal_seq, frame)
        );
        """,
    ),
    (
        # the upload outbox (ratepad.agent.upload): ratings go by id after a cursor; prompts,
        # staff sessions and devices are queued by triggers, one outbox row per changed key
        # (a later change bumps its seq), and leave the outbox only once the server committed
        # the version that was sent. A device is queued when its state, faults, link, staff
        # or firmware change, not for every heartbeat (70 000 keypads would send thousands of
        # identical rows a second)
        3,
        """
        CREATE TABLE upload_cursor (
            stream  TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL
        );
        CREATE TABLE outbox (
            kind TEXT    NOT NULL CHECK (kind IN ('prompt', 'session', 'device')),
            key  TEXT    NOT NULL,
            seq  INTEGER NOT NULL,
            PRIMARY KEY (kind, key)
        );
        CREATE INDEX outbox_by_seq ON outbox (seq);
        CREATE TABLE staff_sessions (
            id            INTEGER PRIMARY KEY,
            serial        TEXT    NOT NULL,
            staff_id      TEXT    NOT NULL,
            started_at_ms INTEGER NOT NULL,
            ended_at_ms   INTEGER
        );
        {QUEUE_PROMPTS}
        {QUEUE_DEVICES}
        CREATE TRIGGER staff_session_change AFTER UPDATE OF staff_id ON devices
        WHEN NEW.staff_id IS NOT OLD.staff_id BEGIN
            UPDATE staff_sessions SET ended_at_ms = NEW.updated_at_ms
                WHERE serial = NEW.serial AND ended_at_ms IS NULL;
            INSERT INTO staff_sessions (serial, staff_id, started_at_ms)
                SELECT NEW.serial, NEW.staff_id, NEW.updated_at_ms
                WHERE COALESCE(NEW.staff_id, '') != '';
        END;
        {QUEUE_SESSIONS}
        """.format(
            QUEUE_PROMPTS=_queued("prompt", "prompts"),
            QUEUE_DEVICES=_queued("device", "devices", DEVICE_CHANGED),
            QUEUE_SESSIONS=_queued("session", "staff_sessions"),
        ),
    ),
    (
        # items the server refused for good (422: it cannot take them, e.g. a newer agent's
        # field an older server rejects): kept here, whole, so that the rest of the outbox
        # moves on and nothing is lost (``ratepad export --rejected``)
        4,
        """
        CREATE TABLE upload_rejected (
            id             INTEGER PRIMARY KEY,
            kind           TEXT    NOT NULL,
            item           TEXT    NOT NULL,
            error          TEXT    NOT NULL,
            rejected_at_ms INTEGER NOT NULL
        );
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (a trigger's body holds ';' of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def version(conn: sqlite3.Connection, path: object) -> int:
    """The schema version of the store open on ``conn`` (0: none yet)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has_table:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    if row[0] is None:
        return 0
    if not isinstance(row[0], int):
        raise BadStoreError(f"{path} is not a ratepad store (schema_version holds {row[0]!r:.40})")
    return row[0]


def check_version(found: int, path: object, read_only: bool) -> None:
    if found > SCHEMA_VERSION:
        raise BadStoreError(
            f"{path} has store schema version {found}; this ratepad knows up to "
            f"{SCHEMA_VERSION}: update ratepad"
        )
    if found == 0 and read_only:
        raise BadStoreError(f"{path} is not a ratepad store")


def migrate(conn: sqlite3.Connection, path: object) -> None:
    """Bring the store on ``conn`` to ``SCHEMA_VERSION``, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)"
        )
        current = version(conn, path)
        check_version(current, path, read_only=False)
        for number, script in MIGRATIONS:
            if number > current:
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?)", (number, time.time_ns() // 10**6)
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def check_writable(conn: sqlite3.Connection) -> None:
    """Fail at start, not at the first rating: a store SQLite opened read-only (a read-only
    file system, a file we may not write) refuses this write; it is rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO schema_version VALUES (-1, 0)")
    finally:
        conn.execute("ROLLBACK")
