"""A stored rating, written once: the record every other spelling of its fields comes from.

``StoredRating``'s fields, in the order of the columns, say for each field its column in the
rating tables (``ratings`` and ``rating_conflicts``), where it stands in the JSON the bridge
serves and ``ratepad export`` writes (``shown``), whether the upload to the server carries it,
and its description in the bridge's OpenAPI document. Derived from them here: the columns and
their DDL, the insert, a row back into a record (by name), the JSON, the export fields and the
upload fields; the bridge builds its ``RatingOut`` model from ``RATING_FIELDS``.

A column added later gets a migration of its own (``since``): the DDL of migration 1 is built
from the columns of version 1 only, so that a released migration never changes.
"""

from __future__ import annotations

import dataclasses
import time
import typing
from dataclasses import dataclass, field
from typing import Any

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


def _field(
    shown: int, column: str | None = None, *, upload: bool = False, doc: str = "", since: int = 1
) -> Any:
    spec = {"shown": shown, "column": column, "upload": upload, "doc": doc, "since": since}
    return field(init=column is not None, metadata={"rating": spec})


@dataclass(frozen=True, slots=True)
class StoredRating:
    """One row of the ratings table (``time`` and ``prompted`` are derived for the JSON)."""

    id: int = _field(1, "INTEGER PRIMARY KEY", doc="Store id; events carry it as their SSE id.")
    serial: str = _field(2, "TEXT    NOT NULL", upload=True)
    journal_seq: int = _field(3, "INTEGER NOT NULL", upload=True)
    boot_id: int = _field(16, "INTEGER NOT NULL", upload=True)
    uptime_ms: int = _field(17, "INTEGER NOT NULL", upload=True)
    time_ms: int = _field(5, "INTEGER NOT NULL", upload=True)
    time_exact: bool = _field(6, "INTEGER NOT NULL", upload=True)
    score: int = _field(7, "INTEGER NOT NULL", upload=True)
    key_count: int = _field(8, "INTEGER NOT NULL", upload=True)
    level: str | None = _field(9, "TEXT")
    level_value: int | None = _field(10, "INTEGER", upload=True)
    staff_id: str = _field(11, "TEXT    NOT NULL", upload=True)
    prompt_id: int = _field(12, "INTEGER NOT NULL", upload=True)
    flags: int = _field(14, "INTEGER NOT NULL", upload=True)
    flag_names: list[str] = _field(15, "TEXT    NOT NULL")  # noqa: RUF009 (no default: metadata)
    received_at_ms: int = _field(18, "INTEGER NOT NULL")
    time: str = _field(4, doc="ISO 8601, UTC.")
    prompted: bool = _field(13)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", _iso(self.time_ms))
        object.__setattr__(self, "prompted", not self.flags & rating_flags.RatingFlags.UNPROMPTED)

    @classmethod
    def received(cls, r: Rating, level: Level | None, received_at_ms: int) -> StoredRating:
        """The record of rating ``r`` as it is inserted (``id`` 0 until then)."""
        brought = {name: getattr(r, name) for name in _FROM_RATING}
        return cls(
            id=0,
            **brought,
            flags=int(r.flags),
            level=None if level is None else level.name,
            level_value=None if level is None else level.value,
            flag_names=rating_flags.names(r.flags),
            received_at_ms=received_at_ms,
        )

    @classmethod
    def from_row(cls, row: typing.Sequence[Any]) -> StoredRating:
        """A row of ``SELECT {RATING_COLUMNS}`` (in that order) as a record."""
        values = dict(zip(RATING_COLUMNS, row, strict=True))
        values["time_exact"] = bool(values["time_exact"])
        values["flag_names"] = values["flag_names"].split() if values["flag_names"] else []
        return cls(**values)

    def row(self) -> list[Any]:
        """The values of ``RATING_COLUMNS`` but ``id``, as the database takes them."""
        out: list[Any] = [getattr(self, name) for name in RATING_COLUMNS[1:]]
        out[RATING_COLUMNS.index("time_exact") - 1] = int(self.time_exact)
        out[RATING_COLUMNS.index("flag_names") - 1] = " ".join(self.flag_names)
        return out

    def as_json(self) -> dict[str, Any]:
        """The bridge's JSON and the export's fields, in ``EXPORT_FIELDS`` order."""
        return {name: getattr(self, name) for name in EXPORT_FIELDS}

    def upload_json(self) -> dict[str, Any]:
        """What the server's ingest takes of this rating (the upload wire format)."""
        return {name: getattr(self, name) for name in UPLOAD_FIELDS}


def _iso(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


def _fields() -> tuple[RatingField, ...]:
    types = typing.get_type_hints(StoredRating)
    return tuple(
        RatingField(f.name, types[f.name], **f.metadata["rating"])
        for f in dataclasses.fields(StoredRating)
    )


ALL_FIELDS = _fields()
RATING_FIELDS: tuple[RatingField, ...] = tuple(sorted(ALL_FIELDS, key=lambda f: f.shown))
RATING_COLUMNS: tuple[str, ...] = tuple(f.name for f in ALL_FIELDS if f.column is not None)
EXPORT_FIELDS: tuple[str, ...] = tuple(f.name for f in RATING_FIELDS)
UPLOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in ALL_FIELDS if f.upload)
# the fields a received rating brings as they are (the rest the store adds or derives)
_FROM_RATING = tuple(
    name
    for name in RATING_COLUMNS
    if name in {f.name for f in dataclasses.fields(Rating)} and name != "flags"
)


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
