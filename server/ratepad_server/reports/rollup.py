"""Maintaining ``FlagRollup`` from each ingest batch (``ingest.service.batch_stored``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from ratepad.wire.codec import RatingFlags

from ..rollups.service import hour_of

FLAG_COLUMNS = ("unprompted", "repeat", "multi_key", "stuck_key", "no_staff", "appeal_upheld")
_BITS = (RatingFlags.UNPROMPTED, RatingFlags.REPEAT, RatingFlags.MULTI_KEY,
         RatingFlags.STUCK_KEY, RatingFlags.NO_STAFF)  # fmt: skip
_UPSERT = (
    "INSERT INTO reports_flagrollup (hour, window_id, staff_id, branch_id, "
    + ", ".join(FLAG_COLUMNS)
    + ") VALUES (%s, %s, %s, %s, "
    + ", ".join(["%s"] * len(FLAG_COLUMNS))
    + ") ON CONFLICT (hour, window_id, staff_id) DO UPDATE SET "
    + ", ".join(f"{c} = reports_flagrollup.{c} + excluded.{c}" for c in FLAG_COLUMNS)
)
Key = tuple[datetime, int, str]


def write(rows: dict[Key, list[int]], branches: dict[Key, int]) -> None:
    """Upsert in key order (the same lock order as the server's rollups)."""
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    args = [[adapt(k[0]), k[1], k[2], branches[k], *rows[k]] for k in sorted(rows)]
    with connection.cursor() as cur:
        cur.executemany(_UPSERT, args)


def add_batch(ratings: Sequence[Sequence[Any]]) -> None:
    """``ratings``: rows in ``ingest.service.RATING_COLUMNS`` order, the batch's new ones."""
    rows: dict[Key, list[int]] = {}
    branches: dict[Key, int] = {}
    for r in ratings:
        flags, window_id = int(r[11]), r[12]
        if window_id is None or not flags:
            continue
        key = (hour_of(r[4]), int(window_id), str(r[9]))
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0] * len(FLAG_COLUMNS)
            branches[key] = int(r[13])
        for i, bit in enumerate(_BITS):
            if flags & bit:
                row[i] += 1
    write(rows, branches)


def add_upheld(when: datetime, window_id: int, staff_id: str, branch_id: int, sign: int) -> None:
    key = (hour_of(when), window_id, staff_id)
    write({key: [0, 0, 0, 0, 0, sign]}, {key: branch_id})
