"""Monthly partitions on PostgreSQL: created on demand (and a year ahead by ``init``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from .migrations import PARTITIONED_TABLES

_known: set[tuple[str, datetime]] = set()
_lock = threading.Lock()


def month_of(when: datetime) -> datetime:
    return datetime(when.year, when.month, 1, tzinfo=UTC)


def months_ahead(start: datetime, count: int) -> list[datetime]:
    out, y, m = [], start.year, start.month
    for _ in range(count):
        out.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def ensure_months(table: str, months: Iterable[datetime]) -> None:
    """Make sure ``table`` has a partition for each month (no-op on SQLite).

    Runs in its own transaction (autocommit) before the batch's: a partition created by a
    batch that then rolls back would otherwise vanish with it."""
    if connection.vendor != "postgresql":
        return
    assert table in PARTITIONED_TABLES, table
    with _lock:
        todo = sorted({m for m in months if (table, m) not in _known})
    if not todo:
        return
    with connection.cursor() as cur:
        for month in todo:
            cur.execute("SELECT ratepad_ensure_month(%s, %s)", [table, month])
    with _lock:
        _known.update((table, m) for m in todo)
