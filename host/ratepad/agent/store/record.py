"""A stored rating, written once: the record every other spelling of its fields comes from.

``StoredRating``'s fields, in the order of the columns, say for each field its column in the
rating tables (``ratings`` and ``rating_conflicts``), where it stands in the JSON the bridge
serves and ``ratepad export`` writes (``shown``), whether the upload to the server carries it,
and its description in the bridge's OpenAPI document; ``time`` and ``prompted`` are derived
from the columns when asked. Derived from them here: the columns and their DDL, the row a
received rating is inserted as, a row back into a record, the JSON, the export fields and the
upload fields; the bridge builds its ``RatingOut`` model from ``RATING_FIELDS``.

A column added later gets a migration of its own (``since``): the DDL of migration 1 is built
from the columns of version 1 only, so that a released migration never changes.
"""

from __future__ import annotations

import dataclasses
import time as _time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ... import flags as rating_flags
from ...events import Rating
from ..levels import Level

__all__ = [
    "EXPORT_FIELDS",
    "RATING_COLUMNS",
    "RATING_FIELDS",
    "UPLOAD_FIELDS",
    "RatingField",
    "StoredRating",
    "rating_columns_ddl",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RatingField:
    """What one field of ``StoredRating`` is outside Python."""

    name: str
    type: Any  # the Python type (the bridge's model takes it)
    shown: int  # its place in the JSON and the export (1 first)
    column: str | None  # its SQL column definition; None: derived from other fields
    upload: bool  # sent to the server
    doc: str
    since: int  # the store schema version that added the column


def _column(shown: int, column: str, *, upload: bool = False, doc: str = "", since: int = 1) -> Any:
    spec = {"shown": shown, "column": column, "upload": upload, "doc": doc, "since": since}
    return field(metadata={"rating": spec})


_DERIVED: dict[str, dict[str, Any]] = {}


def _derived(shown: int, doc: str = "") -> Callable[[Callable[[Any], T]], Callable[[Any], T]]:
    """A field of the JSON computed from the columns when asked (not stored)."""

    def mark(fget: Callable[[Any], T]) -> Callable[[Any], T]:
        _DERIVED[fget.__name__] = {
            "shown": shown,
            "column": None,
            "upload": False,
            "doc": doc,
            "since": 1,
        }
        return fget

    return mark


@dataclass(frozen=True, slots=True)
class StoredRating:
    """One row of the ratings table, and the fields derived from it for the JSON."""

    id: int = _column(1, "INTEGER PRIMARY KEY", doc="Store id; events carry it as their SSE id.")
    serial: str = _column(2, "TEXT    NOT NULL", upload=True)
    journal_seq: int = _column(3, "INTEGER NOT NULL", upload=True)
    boot_id: int = _column(16, "INTEGER NOT NULL", upload=True)
    uptime_ms: int = _column(17, "INTEGER NOT NULL", upload=True)
    time_ms: int = _column(5, "INTEGER NOT NULL", upload=True)
    time_exact: bool = _column(6, "INTEGER NOT NULL", upload=True)
    score: int = _column(7, "INTEGER NOT NULL", upload=True)
    key_count: int = _column(8, "INTEGER NOT NULL", upload=True)
    level: str | None = _column(9, "TEXT")
    level_value: int | None = _column(10, "INTEGER", upload=True)
    staff_id: str = _column(11, "TEXT    NOT NULL", upload=True)
    prompt_id: int = _column(12, "INTEGER NOT NULL", upload=True)
    flags: int = _column(14, "INTEGER NOT NULL", upload=True)
    flag_names: list[str] = _column(15, "TEXT    NOT NULL")  # noqa: RUF009 (no default: metadata)
    received_at_ms: int = _column(18, "INTEGER NOT NULL")

    @property
    @_derived(4, doc="ISO 8601, UTC.")
    def time(self) -> str:
        t = _time.gmtime(self.time_ms // 1000)
        return _time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{self.time_ms % 1000:03d}Z"

    @property
    @_derived(13)
    def prompted(self) -> bool:
        return not self.flags & rating_flags.RatingFlags.UNPROMPTED

    @staticmethod
    def row_of(r: Rating, level: Level | None, received_at_ms: int) -> list[Any]:
        """The values of ``RATING_COLUMNS`` but ``id`` for rating ``r``, as the database takes
        them: what the rating brings, and what the store adds."""
        added = {
            "time_exact": int(r.time_exact),
            "flags": int(r.flags),
            "level": None if level is None else level.name,
            "level_value": None if level is None else level.value,
            "flag_names": " ".join(rating_flags.names(r.flags)),
            "received_at_ms": received_at_ms,
        }
        return [added[n] if n in added else getattr(r, n) for n in RATING_COLUMNS[1:]]

    @classmethod
    def from_row(cls, row: typing.Sequence[Any]) -> StoredRating:
        """A row of ``SELECT {RATING_COLUMNS}`` (in that order) as a record."""
        values = list(row)
        values[_EXACT] = bool(values[_EXACT])
        values[_NAMES] = values[_NAMES].split() if values[_NAMES] else []
        return cls(*values)

    def as_json(self) -> dict[str, Any]:
        """The bridge's JSON and the export's fields, in ``EXPORT_FIELDS`` order."""
        return {name: getattr(self, name) for name in EXPORT_FIELDS}

    def upload_json(self) -> dict[str, Any]:
        """What the server's ingest takes of this rating (the upload wire format)."""
        return {name: getattr(self, name) for name in UPLOAD_FIELDS}


def _fields() -> tuple[RatingField, ...]:
    types = typing.get_type_hints(StoredRating)
    columns = [
        RatingField(f.name, types[f.name], **f.metadata["rating"])
        for f in dataclasses.fields(StoredRating)
    ]
    derived = [
        RatingField(name, typing.get_type_hints(getattr(StoredRating, name).fget)["return"], **spec)
        for name, spec in _DERIVED.items()
    ]
    return (*columns, *derived)


ALL_FIELDS = _fields()
RATING_FIELDS: tuple[RatingField, ...] = tuple(sorted(ALL_FIELDS, key=lambda f: f.shown))
RATING_COLUMNS: tuple[str, ...] = tuple(f.name for f in ALL_FIELDS if f.column is not None)
EXPORT_FIELDS: tuple[str, ...] = tuple(f.name for f in RATING_FIELDS)
UPLOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in ALL_FIELDS if f.upload)
_EXACT = RATING_COLUMNS.index("time_exact")
_NAMES = RATING_COLUMNS.index("flag_names")


def rating_columns_ddl(version: int, after_id: str = "") -> str:
    """The columns of a rating table at schema ``version`` (``after_id``: a column to put after
    ``id``, as ``rating_conflicts`` has its ``existing_id``)."""
    lines = [
        f"{f.name:<14} {f.column}"
        for f in ALL_FIELDS
        if f.column is not None and f.since <= version
    ]
    if after_id:
        lines.insert(1, after_id)
    return ",\n            ".join(lines)
