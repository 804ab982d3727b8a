"""The agent's durable store: SQLite (stdlib), one writer, batched transactions.

Rules kept here:

* **Commit, then ACK.** ``Store.apply(batch)`` writes a whole batch in one transaction and
  returns only once it is committed; the caller ACKs the batch's ratings after that. A rating is
  deleted from the keypad's journal only after the ACK, so whatever happens to this process
  (``kill -9``, power loss) every ACKed rating is on disk.
* **Exactly once.** ``UNIQUE(serial, journal_seq)``, inserts that ignore a conflict on that key:
  a rating sent again (after a lost ACK, a reconnect, a restart of the agent) is ACKed again but
  stored once. A *different* rating under a stored key (a keypad whose journal was wiped starts
  again at seq 1) is not dropped: it goes to ``rating_conflicts``, flagged for analysis.
* **Durability settings.** WAL journal with ``synchronous=FULL``: every commit fsyncs the WAL, so
  a committed batch survives a power failure as well as a crash. ``NORMAL`` in WAL mode would
  only fsync at checkpoints: a commit would survive ``kill -9`` (the data is in the OS cache) but
  the last commits could roll back on power loss, *after* their ratings were ACKed and deleted
  from the keypad: a lost rating. FULL costs one fsync per commit, which batching amortises
  (hundreds of ratings per fsync under load).
* Readers (the bridge, ``export``) use their own connections; WAL lets them read while the writer
  writes.
* ``schema_version`` records applied migrations; a store written by a newer ratepad is refused.
* **Nothing from the wire reaches SQL unchecked.** Every value of a rating is range-checked
  first (``rating_problem``); a rating that cannot be stored as a rating (an ``epoch_ms`` past
  year 9999, a score above the key count ...) goes to the ``quarantine`` table, raw (the frame,
  re-encoded from the message exactly as received) with the reason, in the same transaction, and
  is ACKed after that commit like any other: the keypad stops resending it and nothing is lost.
* **Owner-only files.** The store is created with mode 0600 (an existing one is narrowed to
  it); SQLite gives its ``-wal`` and ``-shm`` files the store's mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import flags as rating_flags
from ..errors import InputError, RatepadError
from ..events import Connected, Rating, Status
from ..wire import codec
from .levels import LevelMapping
from .schema import (
    ANSWER_PROMPT,
    CLOSE_PROMPT,
    EXPIRE_PROMPTS,
    INSERT_RATING,
    ISSUE_PROMPT,
    MIGRATIONS,
    QUARANTINE_COLUMNS,
    QUARANTINE_RATING,
    RATING_COLUMNS,
    SCHEMA_VERSION,
    UPLOAD_PENDING,
)

__all__ = [
    "SCHEMA_VERSION",
    "BadStoreError",
    "Confirmer",
    "DeviceSnapshot",
    "PromptClosed",
    "PromptIssued",
    "Quarantined",
    "RatingItem",
    "Store",
    "StoreError",
    "StoreRowError",
    "StoredRating",
    "flag_names",
    "now_ms",
    "rating_problem",
]


class StoreError(RatepadError):
    """The store cannot be opened or written (bad file, newer schema, disk error)."""


class BadStoreError(StoreError, InputError):
    """The file is not a store this ratepad can use: not SQLite, not a ratepad store, a newer
    schema, not writable, not there (the CLI exits 2)."""


class StoreRowError(StoreError):
    """One item of a batch could not be written (the database refused its values); ``index``
    says which. Nothing of the batch is stored."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


# Errors that come from an item's values rather than from the database file or the disk: the
# same item fails again, the others of its batch would not.
_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
    ValueError,
    TypeError,
    AttributeError,
    UnicodeError,
)

U8 = 0xFF
U32 = 0xFFFF_FFFF
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time ISO 8601 can say
MAX_TEXT_BYTES = 16  # serial and staff_id on the wire


def _text_problem(name: str, value: object) -> str:
    if not isinstance(value, str):
        return f"{name} is not text"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{name} is not valid UTF-8"
    if size > MAX_TEXT_BYTES:
        return f"{name} is longer than {MAX_TEXT_BYTES} bytes"
    return ""


def rating_problem(r: Rating) -> str:
    """Why ``r`` cannot be stored as a rating ("" if it can): every value range-checked."""
    for name, value, low, high in (
        ("journal_seq", r.journal_seq, 1, U32),
        ("boot_id", r.boot_id, 0, U32),
        ("uptime_ms", r.uptime_ms, 0, U32),
        ("time_ms", r.time_ms, 0, MAX_TIME_MS),
        ("key_count", r.key_count, 1, U8),
        ("prompt_id", r.prompt_id, 0, U32),
        ("flags", r.flags, 0, U8),
    ):
        if not isinstance(value, int):
            return f"{name} is not an integer"
        if not low <= value <= high:
            return f"{name} {value} outside {low}..{high}"
    if not isinstance(r.score, int) or not 0 <= r.score <= r.key_count:
        return f"score {r.score!r} outside 0..{r.key_count}"
    return _text_problem("serial", r.serial) or _text_problem("staff_id", r.staff_id)


def _frame_of(r: Rating) -> bytes:
    """The rating's frame, re-encoded from the message as received (b"" if it cannot be)."""
    with contextlib.suppress(Exception):
        if r.message is not None:
            return codec.encode(r.message)
        epoch = r.time_ms if r.time_exact else None
        fields = {
            "journal_seq": r.journal_seq,
            "boot_id": r.boot_id,
            "uptime_ms": r.uptime_ms,
            "epoch_ms": epoch,
            "score": r.score,
            "key_count": r.key_count,
            "prompt_id": r.prompt_id,
            "flags": int(r.flags),
            "staff_id": r.staff_id,
        }
        return codec.encode_frame("rating", fields)
    return b""


def _message_json(r: Rating) -> str:
    """The rating as received, as JSON text (any value, however wrong, survives this)."""
    fields: dict[str, Any] = {"serial": r.serial}
    if r.message is not None:
        fields.update(codec.message_fields(r.message)[1])
    else:
        for name in ("journal_seq", "boot_id", "uptime_ms", "time_ms", "time_exact", "score"):
            fields[name] = getattr(r, name)
        for name in ("key_count", "prompt_id", "flags", "staff_id"):
            fields[name] = getattr(r, name)
    return json.dumps(fields, default=repr)


def _safe_text(value: object) -> str:
    return str(value).encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A rating kept in the quarantine table (not as a rating): ``reason`` says why."""

    id: int | None
    reason: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def flag_names(flags: int) -> list[str]:
    return rating_flags.names(flags)


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
class StoredRating:
    """One row of the ratings table."""

    id: int
    serial: str
    journal_seq: int
    boot_id: int
    uptime_ms: int
    time_ms: int
    time_exact: bool
    score: int
    key_count: int
    level: str | None
    level_value: int | None
    staff_id: str
    prompt_id: int
    flags: int
    flag_names: list[str]
    received_at_ms: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredRating:
        values = list(row)
        values[6] = bool(values[6])
        values[14] = values[14].split() if values[14] else []
        return cls(*values)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "serial": self.serial,
            "journal_seq": self.journal_seq,
            "boot_id": self.boot_id,
            "uptime_ms": self.uptime_ms,
            "time_ms": self.time_ms,
            "time": _iso(self.time_ms),
            "time_exact": self.time_exact,
            "score": self.score,
            "key_count": self.key_count,
            "level": self.level,
            "level_value": self.level_value,
            "staff_id": self.staff_id,
            "prompt_id": self.prompt_id,
            "prompted": not self.flags & rating_flags.RatingFlags.UNPROMPTED,
            "flags": self.flags,
            "flag_names": self.flag_names,
            "received_at_ms": self.received_at_ms,
        }


def _iso(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


# -- the store -----------------------------------------------------------------------------------
def _create_owner_only(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 if it does not exist yet.

    SQLite creates the ``-wal`` and ``-shm`` files with the mode of the database file
    (``robust_open`` and ``findCreateFileMode`` in SQLite's os_unix.c), so they are owner-only
    as well."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _narrow_to_owner(path: Path) -> None:
    """A store (and its -wal, -shm) created before modes were kept owner-only: narrow it."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            st = p.stat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (a trigger's body holds ';' of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        uri = path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


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
        self.conflicts = 0  # ratings kept in rating_conflicts by this process
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise BadStoreError(f"no store at {self.path}")
        if not read_only:
            with contextlib.suppress(OSError):  # sqlite3 reports what is really wrong
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                _create_owner_only(self.path)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise BadStoreError(f"cannot open the store {self.path}: {reason}") from None
        try:
            self._conn = _connect(self.path, read_only)
            if read_only:
                self._check_version(self._version())
            else:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._migrate()
                self._check_writable()
                _narrow_to_owner(self.path)
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise BadStoreError(f"cannot open the store {self.path}: {exc}") from None
        except StoreError:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise

    def _check_writable(self) -> None:
        # Fail at start, not at the first rating: a store SQLite opened read-only (a read-only
        # file system, a file we may not write) refuses this write; it is rolled back.
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("INSERT INTO schema_version VALUES (-1, 0)")
        finally:
            c.execute("ROLLBACK")

    # -- schema -------------------------------------------------------------------------------
    def _version(self) -> int:
        has_table = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not has_table:
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            return 0
        if not isinstance(row[0], int):
            raise BadStoreError(
                f"{self.path} is not a ratepad store (schema_version holds {row[0]!r:.40})"
            )
        return row[0]

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise BadStoreError(
                f"{self.path} has store schema version {version}; this ratepad knows up to "
                f"{SCHEMA_VERSION}: update ratepad"
            )
        if version == 0 and self.read_only:
            raise BadStoreError(f"{self.path} is not a ratepad store")

    def _migrate(self) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)"
            )
            current = self._version()
            self._check_version(current)
            for version, script in MIGRATIONS:
                if version > current:
                    for statement in _statements(script):
                        c.execute(statement)
                    c.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now_ms()))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version()

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
        with self._lock:
            c = self._conn
            writing = False  # True while the items are written (item len(out) fails)
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    writing = True
                    for item in batch:
                        out.append(self._write(c, item, now))
                    writing = False
                    c.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        c.execute("ROLLBACK")
                    raise
            except _ROW_ERRORS as exc:
                if not writing:  # not an item's values (the commit itself)
                    raise StoreError(f"cannot write the store {self.path}: {exc}") from None
                index = len(out)
                raise StoreRowError(
                    f"cannot store item {index + 1} of {len(batch)}: {type(exc).__name__}: {exc}",
                    index,
                ) from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
        return out

    def quarantine(
        self, rating: Rating, reason: str, received_at_ms: int | None = None
    ) -> Quarantined:
        """Keep ``rating`` raw in the quarantine table, with ``reason``, in its own transaction
        (a rating the database refused as a rating). Raises StoreError if that fails too."""
        now = now_ms() if received_at_ms is None else received_at_ms
        with self._lock:
            c = self._conn
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    q = self._quarantine(c, rating, reason, now)
                    c.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        c.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
        return q

    @staticmethod
    def _quarantine(c: sqlite3.Connection, r: Rating, reason: str, now: int) -> Quarantined:
        seq = r.journal_seq if isinstance(r.journal_seq, int) and 0 <= r.journal_seq <= U32 else -1
        cur = c.execute(
            QUARANTINE_RATING,
            (_safe_text(r.serial), seq, _safe_text(reason), _frame_of(r), _message_json(r), now),
        )
        return Quarantined(cur.lastrowid if cur.rowcount == 1 else None, reason)

    def upload_pending(self) -> int:
        """Ratings and outbox rows not yet committed by the server (0 without uploads)."""
        with self._reader() as conn:
            row = conn.execute(UPLOAD_PENDING).fetchone()
        return int(row[0])

    def rejected(self) -> list[dict[str, Any]]:
        """Items the server refused for good (``upload_rejected``), oldest first, ``item``
        decoded."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT id, kind, item, error, rejected_at_ms FROM upload_rejected ORDER BY id"
            ).fetchall()
        return [
            {"id": i, "kind": k, "item": json.loads(item), "error": e, "rejected_at_ms": at}
            for i, k, item, e, at in rows
        ]

    def quarantined(self) -> list[dict[str, Any]]:
        """The quarantine table, oldest first (``frame`` as hex)."""
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine ORDER BY id"
            ).fetchall()
        out = []
        for row in rows:
            d = dict(zip(QUARANTINE_COLUMNS, row, strict=True))
            d["frame"] = bytes(d["frame"]).hex()
            out.append(d)
        return out

    def _write(
        self, c: sqlite3.Connection, item: Item, now: int
    ) -> StoredRating | Quarantined | None:
        if isinstance(item, RatingItem):
            r = item.rating
            problem = rating_problem(r) or r.problem
            if problem:
                return self._quarantine(c, r, problem, now)
            level = self.mapping.level(r.score, r.key_count)
            names = rating_flags.names(r.flags)
            row = [
                r.serial,
                r.journal_seq,
                r.boot_id,
                r.uptime_ms,
                r.time_ms,
                int(r.time_exact),
                r.score,
                r.key_count,
                None if level is None else level.name,
                None if level is None else level.value,
                r.staff_id,
                r.prompt_id,
                int(r.flags),
                " ".join(names),
                now,
            ]
            cur = c.execute(INSERT_RATING, row)
            if cur.rowcount != 1:
                self._check_duplicate(c, r, row)
                return None
            if r.prompt_id:
                c.execute(ANSWER_PROMPT, (r.serial, r.prompt_id, r.staff_id, now, r.journal_seq))
            return StoredRating.from_row([cur.lastrowid, *row])
        if isinstance(item, PromptIssued):
            c.execute(
                ISSUE_PROMPT,
                (item.serial, item.prompt_id, item.staff_id, item.issued_at_ms, item.timeout_ms),
            )
        elif isinstance(item, PromptClosed):
            c.execute(CLOSE_PROMPT, (item.state, item.closed_at_ms, item.serial, item.prompt_id))
        else:
            self._write_device(c, item, now)
        return None

    def _check_duplicate(self, c: sqlite3.Connection, r: Rating, row: list[Any]) -> None:
        # A retransmission carries the same journal record. A *different* rating under a stored
        # (serial, seq) means the keypad's journal went back (flash wiped, serial reused): keep
        # it in rating_conflicts, flagged for analysis, rather than drop it silently.
        existing = c.execute(
            "SELECT id, boot_id, uptime_ms, score, prompt_id, staff_id FROM ratings"
            " WHERE serial = ? AND journal_seq = ?",
            (r.serial, r.journal_seq),
        ).fetchone()
        if existing is None or tuple(existing[1:]) == (
            r.boot_id,
            r.uptime_ms,
            r.score,
            r.prompt_id,
            r.staff_id,
        ):
            return
        c.execute(
            "INSERT INTO rating_conflicts (existing_id, serial, journal_seq, boot_id, uptime_ms,"
            " time_ms, time_exact, score, key_count, level, level_value, staff_id, prompt_id,"
            " flags, flag_names, received_at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (existing[0], *row),
        )
        self.conflicts += c.execute("SELECT changes()").fetchone()[0]

    def conflicting(self) -> list[dict[str, Any]]:
        """Ratings that came under an already stored (serial, journal seq) with other content."""
        with self._reader() as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM rating_conflicts ORDER BY id")]

    def _write_device(self, c: sqlite3.Connection, d: DeviceSnapshot, now: int) -> None:
        c.execute(
            "INSERT INTO devices (serial, url, connected, updated_at_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (serial) DO UPDATE SET url = excluded.url,"
            " connected = excluded.connected, updated_at_ms = excluded.updated_at_ms",
            (d.serial, d.url, int(d.connected), now),
        )
        if d.hello is not None:
            h = d.hello
            c.execute(
                "UPDATE devices SET firmware = ?, board = ?, key_count = ?, boot_id = ?,"
                " acked_seq = ? WHERE serial = ?",
                (h.firmware_version, h.board, h.key_count, h.boot_id, h.acked_seq, d.serial),
            )
        if d.status is not None:
            s = d.status
            state = s.state.name.lower() if isinstance(s.state, codec.DeviceState) else s.state
            faults = " ".join(f.name.lower() for f in codec.Faults if f.name and s.faults & f)
            c.execute(
                "UPDATE devices SET state = ?, faults = ?, unacked = ?, presses = ?,"
                " unprompted = ?, repeats = ?, multi_key = ?, stuck_keys = ?, staff_id = ?,"
                " acked_seq = ? WHERE serial = ?",
                (
                    str(state),
                    faults,
                    s.unacked,
                    s.presses,
                    s.unprompted,
                    s.repeats,
                    s.multi_key,
                    s.stuck_keys,
                    s.staff_id,
                    s.acked_seq,
                    d.serial,
                ),
            )

    def expire_prompts(self, now: int | None = None, grace_ms: int = 5000) -> int:
        """Mark prompts past their timeout (plus ``grace_ms``) and still open as timed out."""
        with self._lock:
            try:
                cur = self._conn.execute(EXPIRE_PROMPTS, (grace_ms, now or now_ms()))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
            return cur.rowcount

    # -- reading ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = _connect(self.path, read_only=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc}") from None
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc}") from None
        finally:
            conn.close()

    def ratings(
        self, since_id: int = 0, limit: int | None = 100, serial: str | None = None
    ) -> list[StoredRating]:
        """Stored ratings with ``id > since_id``, oldest first."""
        return list(self.iter_ratings(since_id, limit, serial))

    def iter_ratings(
        self, since_id: int = 0, limit: int | None = None, serial: str | None = None
    ) -> Iterator[StoredRating]:
        sql = f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings WHERE id > ?"
        args: list[Any] = [since_id]
        if serial is not None:
            sql += " AND serial = ?"
            args.append(serial)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reader() as conn:
            for row in conn.execute(sql, args):
                yield StoredRating.from_row(row)

    def count(self, serial: str | None = None) -> int:
        with self._reader() as conn:
            if serial is None:
                row = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM ratings WHERE serial = ?", (serial,)
                ).fetchone()
        return int(row[0])

    def prompt(self, serial: str, prompt_id: int) -> dict[str, Any] | None:
        with self._reader() as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT * FROM prompts WHERE serial = ? AND prompt_id = ?", (serial, prompt_id)
            ).fetchone()
        return None if row is None else dict(row)

    def devices(self) -> dict[str, dict[str, Any]]:
        """The latest snapshot of every keypad ever seen, by serial."""
        with self._reader() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM devices ORDER BY serial").fetchall()
        out = {}
        for row in rows:
            d = dict(row)
            d["connected"] = bool(d["connected"])
            d["faults"] = d["faults"].split() if d["faults"] else []
            out[d["serial"]] = d
        return out

    def summary(self) -> list[dict[str, Any]]:
        """Per keypad: ratings, satisfaction index (mean level value), prompts and response rate."""
        with self._reader() as conn:
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

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
