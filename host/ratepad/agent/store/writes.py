"""What the writer stores, and how: ratings (or their quarantine), prompts, keypad snapshots.

Every function here runs inside the writer's transaction (``Store.apply``) on its connection.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ...events import U32, Connected, Rating, Status
from ...wire import codec
from ..levels import LevelMapping
from .record import RATING_COLUMNS, StoredRating

__all__ = [
    "Confirmer",
    "DeviceSnapshot",
    "Item",
    "PromptClosed",
    "PromptIssued",
    "Quarantined",
    "RatingItem",
    "now_ms",
    "write_item",
]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- batch items ---------------------------------------------------------------------------------
class Confirmer(Protocol):
    """Where a rating came from: told once the rating is stored (a Keypad: it sends the ACK)."""

    def confirm(self, rating: Rating) -> None: ...


@dataclass(frozen=True, slots=True)
class RatingItem:
    """A rating to store, and whom to confirm it to after the commit (the store ignores it)."""

    rating: Rating
    source: Confirmer | None = None


@dataclass(frozen=True, slots=True)
class PromptIssued:
    serial: str
    prompt_id: int
    staff_id: str
    timeout_ms: int
    issued_at_ms: int


@dataclass(frozen=True, slots=True)
class PromptClosed:
    """A prompt ended without a rating (``timed_out`` or ``cancelled``); a rating that answers
    it later still wins."""

    serial: str
    prompt_id: int
    state: str
    closed_at_ms: int


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """The latest we know of a keypad: its hello and/or its last status."""

    serial: str
    url: str
    connected: bool
    hello: Connected | None = None
    status: Status | None = None


Item = RatingItem | PromptIssued | PromptClosed | DeviceSnapshot


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A rating kept in the quarantine table (not as a rating): ``reason`` says why."""

    id: int | None
    reason: str


# -- statements ----------------------------------------------------------------------------------
_VALUES = ", ".join("?" * (len(RATING_COLUMNS) - 1))
# Dedupe on the key only: "ON CONFLICT (serial, journal_seq) DO NOTHING" ignores a stored
# rating sent again, like INSERT OR IGNORE, but unlike it does not also silently skip a row
# that breaks another constraint (NOT NULL, CHECK): such a row fails the batch, which then is
# not ACKed, instead of being dropped and ACKed.
INSERT_RATING = (
    f"INSERT INTO ratings ({', '.join(RATING_COLUMNS[1:])}) VALUES ({_VALUES})"
    " ON CONFLICT (serial, journal_seq) DO NOTHING"
)
INSERT_CONFLICT = (
    f"INSERT INTO rating_conflicts (existing_id, {', '.join(RATING_COLUMNS[1:])})"
    f" VALUES (?, {_VALUES}) ON CONFLICT DO NOTHING"
)
# what a retransmission repeats: the same journal record
SAME_RECORD = ("boot_id", "uptime_ms", "score", "prompt_id", "staff_id")
STORED_RECORD = (
    f"SELECT id, {', '.join(SAME_RECORD)} FROM ratings WHERE serial = ? AND journal_seq = ?"
)
ANSWER_PROMPT = (
    "INSERT INTO prompts (serial, prompt_id, staff_id, state, closed_at_ms, rating_seq)"
    " VALUES (?, ?, ?, 'answered', ?, ?)"
    " ON CONFLICT (serial, prompt_id) DO UPDATE SET state = 'answered',"
    " closed_at_ms = excluded.closed_at_ms, rating_seq = excluded.rating_seq"
)
ISSUE_PROMPT = (
    "INSERT INTO prompts (serial, prompt_id, staff_id, issued_at_ms, timeout_ms, state)"
    " VALUES (?, ?, ?, ?, ?, 'issued')"
    " ON CONFLICT (serial, prompt_id) DO UPDATE SET issued_at_ms = excluded.issued_at_ms,"
    " timeout_ms = excluded.timeout_ms, staff_id = excluded.staff_id, state = 'issued',"
    " closed_at_ms = NULL, rating_seq = NULL"  # issued again: the old answer is not this one's
)
CLOSE_PROMPT = (
    "UPDATE prompts SET state = ?, closed_at_ms = ?"
    " WHERE serial = ? AND prompt_id = ? AND state = 'issued'"
)
EXPIRE_PROMPTS = (
    "UPDATE prompts SET state = 'timed_out', closed_at_ms = issued_at_ms + timeout_ms"
    " WHERE state = 'issued' AND issued_at_ms + timeout_ms + ? < ?"
)
# A rating that cannot be stored as a rating (a value out of range, a row the database refuses):
# kept raw with the reason, so that it can be ACKed and nothing is lost. The same frame sent
# again (the keypad resends until ACKed) is kept once.
QUARANTINE_RATING = (
    "INSERT INTO quarantine (serial, journal_seq, reason, frame, message, received_at_ms)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, journal_seq, frame) DO NOTHING"
)
DEVICE_SEEN = (
    "INSERT INTO devices (serial, url, connected, updated_at_ms) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (serial) DO UPDATE SET url = excluded.url,"
    " connected = excluded.connected, updated_at_ms = excluded.updated_at_ms"
)
DEVICE_HELLO = (
    "UPDATE devices SET firmware = ?, board = ?, key_count = ?, boot_id = ?,"
    " acked_seq = ? WHERE serial = ?"
)
DEVICE_STATUS = (
    "UPDATE devices SET state = ?, faults = ?, unacked = ?, presses = ?,"
    " unprompted = ?, repeats = ?, multi_key = ?, stuck_keys = ?, staff_id = ?,"
    " acked_seq = ? WHERE serial = ?"
)


# -- writing -------------------------------------------------------------------------------------
class Counter:
    """Ratings kept in ``rating_conflicts`` (the store's ``conflicts``)."""

    def __init__(self) -> None:
        self.conflicts = 0


def write_item(
    c: sqlite3.Connection, item: Item, now: int, mapping: LevelMapping, counter: Counter
) -> StoredRating | Quarantined | None:
    if isinstance(item, RatingItem):
        return _write_rating(c, item.rating, now, mapping, counter)
    if isinstance(item, PromptIssued):
        c.execute(
            ISSUE_PROMPT,
            (item.serial, item.prompt_id, item.staff_id, item.issued_at_ms, item.timeout_ms),
        )
    elif isinstance(item, PromptClosed):
        c.execute(CLOSE_PROMPT, (item.state, item.closed_at_ms, item.serial, item.prompt_id))
    else:
        _write_device(c, item, now)
    return None


def _write_rating(
    c: sqlite3.Connection, r: Rating, now: int, mapping: LevelMapping, counter: Counter
) -> StoredRating | Quarantined | None:
    problem = r.problem  # nothing from the wire reaches SQL unchecked
    if problem:
        return quarantine(c, r, problem, now)
    row = StoredRating.row_of(r, mapping.level(r.score, r.key_count), now)
    cur = c.execute(INSERT_RATING, row)
    if cur.rowcount != 1:
        counter.conflicts += _check_duplicate(c, r, row)
        return None
    if r.prompt_id:
        c.execute(ANSWER_PROMPT, (r.serial, r.prompt_id, r.staff_id, now, r.journal_seq))
    return StoredRating.from_row([cur.lastrowid, *row])


def _check_duplicate(c: sqlite3.Connection, r: Rating, row: list[Any]) -> int:
    # A retransmission carries the same journal record. A *different* rating under a stored
    # (serial, seq) means the keypad's journal went back (flash wiped, serial reused): keep
    # it in rating_conflicts, flagged for analysis, rather than drop it silently.
    existing = c.execute(STORED_RECORD, (r.serial, r.journal_seq)).fetchone()
    if existing is None or tuple(existing[1:]) == tuple(getattr(r, n) for n in SAME_RECORD):
        return 0
    return c.execute(INSERT_CONFLICT, (existing[0], *row)).rowcount


def _write_device(c: sqlite3.Connection, d: DeviceSnapshot, now: int) -> None:
    c.execute(DEVICE_SEEN, (d.serial, d.url, int(d.connected), now))
    if d.hello is not None:
        h = d.hello
        c.execute(
            DEVICE_HELLO,
            (h.firmware_version, h.board, h.key_count, h.boot_id, h.acked_seq, d.serial),
        )
    if d.status is not None:
        s = d.status
        state = s.state.name.lower() if isinstance(s.state, codec.DeviceState) else s.state
        faults = " ".join(f.name.lower() for f in codec.Faults if f.name and s.faults & f)
        counts = (s.unacked, s.presses, s.unprompted, s.repeats, s.multi_key, s.stuck_keys)
        c.execute(DEVICE_STATUS, (str(state), faults, *counts, s.staff_id, s.acked_seq, d.serial))


# -- quarantine ----------------------------------------------------------------------------------
def quarantine(c: sqlite3.Connection, r: Rating, reason: str, now: int) -> Quarantined:
    """Keep ``r`` raw in the quarantine table with ``reason``."""
    seq = r.journal_seq if isinstance(r.journal_seq, int) and 0 <= r.journal_seq <= U32 else -1
    cur = c.execute(
        QUARANTINE_RATING,
        (_safe_text(r.serial), seq, _safe_text(reason), _frame_of(r), _message_json(r), now),
    )
    return Quarantined(cur.lastrowid if cur.rowcount == 1 else None, reason)


def _frame_of(r: Rating) -> bytes:
    """The rating's frame, re-encoded from the message as received (b"" if it cannot be)."""
    with contextlib.suppress(Exception):
        if r.message is not None:
            return codec.encode(r.message)
        fields = {name: getattr(r, name) for name in codec.Rating._fields if name != "epoch_ms"}
        fields["epoch_ms"] = r.time_ms if r.time_exact else None
        fields["flags"] = int(r.flags)
        return codec.encode_frame("rating", fields)
    return b""


def _message_json(r: Rating) -> str:
    """The rating as received, as JSON text (any value, however wrong, survives this)."""
    if r.message is not None:
        fields = {"serial": r.serial, **codec.message_fields(r.message)[1]}
    else:
        fields = {name: getattr(r, name) for name in _RECEIVED}
    return json.dumps(fields, default=repr)


_RECEIVED = [name for name in Rating.__dataclass_fields__ if name not in ("retransmit", "message")]


def _safe_text(value: object) -> str:
    return str(value).encode("utf-8", "replace").decode("utf-8")
