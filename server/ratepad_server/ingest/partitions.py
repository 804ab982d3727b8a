"""Monthly partitions on PostgreSQL, created ahead by a scheduled step, never by a batch.

``ensure_ahead()`` creates every month of the accepted span (``bounds``) and ``AHEAD`` months
more: ``ratepad server init`` and ``ratepad server partitions`` call it, and so does the alert
worker's periodic maintenance (hourly). The ingest path only asks which months exist
(``present``): DDL inside a batch would let one batch create thousands of tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from .bounds import accepted
from .migrations import PARTITIONED_TABLES

AHEAD = 3  # months created beyond the accepted span: a quarter without the scheduled step

_known: set[tuple[str, datetime]] = set()
_lock = threading.Lock()


def month_of(when: datetime) -> datetime:
    return datetime(when.year, when.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    k = month.year * 12 + month.month - 1 + count
    return datetime(k // 12, k % 12 + 1, 1, tzinfo=UTC)


def months_between(first: datetime, last: datetime) -> list[datetime]:
    """The months from ``first``'s to ``last``'s, both included."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def ensure_ahead(now: datetime | None = None) -> list[datetime]:
    """Create the missing partitions of every month a batch may be accepted for, and ``AHEAD``
    months more (no-op on SQLite); the months covered."""
    span = accepted(now or timezone.now())
    months = months_between(span.since, add_months(month_of(span.until), AHEAD))
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for table in PARTITIONED_TABLES:
                for month in months:
                    cur.execute("SELECT ratepad_ensure_month(%s, %s)", [table, month])
        with _lock:
            _known.update((t, m) for t in PARTITIONED_TABLES for m in months)
    return months


def present(table: str, months: Iterable[datetime]) -> set[datetime]:
    """Which of ``months`` have a partition of ``table`` (all of them on SQLite). Reads the
    catalogue for months not seen yet; creates nothing."""
    wanted = set(months)
    if connection.vendor != "postgresql":
        return wanted
    assert table in PARTITIONED_TABLES, table
    with _lock:
        todo = sorted(m for m in wanted if (table, m) not in _known)
    if todo:
        names = [f"{table}_{m:%Y%m}" for m in todo]
        with connection.cursor() as cur:
            cur.execute(
                "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NOT NULL", [names]
            )
            found = {row[0] for row in cur.fetchall()}
        with _lock:
            _known.update((table, m) for m, n in zip(todo, names, strict=True) if n in found)
    with _lock:
        return {m for m in wanted if (table, m) in _known}
