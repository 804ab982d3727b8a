"""Rollups: hourly counts per (window, staff member), added to in each ingest transaction.

Rules: a rating counts for KPIs (``n``, the per-score counts, the level sum) unless it carries
one of ``KPI_EXCLUDED`` flags; it is kept and counted in ``n_all`` anyway. "Top two" is the top
two levels of the keypad's own scale (score >= key_count - 1), so 3-, 4- and 5-key keypads mix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, Sum

from ratepad.wire.codec import RatingFlags

from ..org.models import Node
from .models import HourRollup

# a server-side flag, above the wire's: a staff member's appeal against the rating was upheld
APPEAL_UPHELD = 1 << 24
KPI_EXCLUDED = RatingFlags.REPEAT | RatingFlags.MULTI_KEY | RatingFlags.STUCK_KEY | APPEAL_UPHELD
COLUMNS = (
    "n_all",
    "n",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "top2",
    "level_n",
    "level_sum",
    "prompts",
    "answered",
)
_UPSERT = (
    "INSERT INTO rollups_hourrollup (hour, window_id, staff_id, branch_id, "
    + ", ".join(COLUMNS)
    + ") VALUES (%s, %s, %s, %s, "
    + ", ".join(["%s"] * len(COLUMNS))
    + ") ON CONFLICT (hour, window_id, staff_id) DO UPDATE SET "
    + ", ".join(f"{c} = rollups_hourrollup.{c} + excluded.{c}" for c in COLUMNS)
)

Key = tuple[datetime, int, str]  # hour, window id, staff id


@dataclass
class Deltas:
    """What one batch adds to the rollups."""

    rows: dict[Key, list[int]] = field(default_factory=dict)
    branch: dict[Key, int] = field(default_factory=dict)

    def _row(self, hour: datetime, window_id: int, staff_id: str, branch_id: int) -> list[int]:
        key = (hour, window_id, staff_id)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0] * len(COLUMNS)
            self.branch[key] = branch_id
        return row

    def add_rating(
        self,
        when: datetime,
        window_id: int,
        branch_id: int,
        staff_id: str,
        score: int,
        key_count: int,
        level_value: int | None,
        flags: int,
    ) -> None:
        row = self._row(hour_of(when), window_id, staff_id, branch_id)
        row[0] += 1
        if flags & KPI_EXCLUDED:
            return
        row[1] += 1
        if 1 <= score <= 5:
            row[1 + score] += 1
        if score >= key_count - 1:
            row[7] += 1
        if level_value is not None:
            row[8] += 1
            row[9] += level_value

    def add_prompt(
        self,
        issued: datetime,
        window_id: int,
        branch_id: int,
        staff_id: str,
        prompts: int,
        answered: int,
    ) -> None:
        row = self._row(hour_of(issued), window_id, staff_id, branch_id)
        row[10] += prompts
        row[11] += answered

    def write(self) -> None:
        """Upsert, in key order: two batches touching the same rows lock them in the same
        order, so concurrent ingests cannot deadlock."""
        if not self.rows:
            return
        adapt = connection.ops.adapt_datetimefield_value  # SQLite keeps datetimes as text
        args = [
            [adapt(key[0]), key[1], key[2], self.branch[key], *self.rows[key]]
            for key in sorted(self.rows)
        ]
        with connection.cursor() as cur:
            cur.executemany(_UPSERT, args)


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summary(
    node: Node, since: datetime | None, until: datetime | None, staff_id: str | None = None
) -> dict[str, Any]:
    """The contract's summary of ``node``'s subtree from the rollups (hours that start in
    [since, until))."""
    q = Q(branch__path__startswith=node.path)
    if since is not None:
        q &= Q(hour__gte=hour_of(since))
    if until is not None:
        q &= Q(hour__lt=until)
    if staff_id is not None:
        q &= Q(staff_id=staff_id)
    sums = HourRollup.objects.filter(q).aggregate(**{c: Sum(c) for c in COLUMNS})
    t = {c: int(sums[c] or 0) for c in COLUMNS}
    n = t["n"]
    return {
        "node": node.code,
        "n": n,
        "n_all": t["n_all"],
        "counts": {str(s): t[f"s{s}"] for s in range(1, 6)},
        "index": round(t["level_sum"] / t["level_n"], 2) if t["level_n"] else None,
        "csat": round(t["top2"] / n, 4) if n else None,
        "csat_ci": [round(x, 4) for x in wilson(t["top2"], n)] if n else None,
        "response_rate": round(t["answered"] / t["prompts"], 4) if t["prompts"] else None,
        "prompts": t["prompts"],
    }


def rebuild_sql() -> Sequence[str]:
    """Statements that rebuild every rollup from the raw rows (a repair tool, and the check
    the tests use that incremental and rebuilt rollups agree)."""
    excluded = int(KPI_EXCLUDED)
    return [
        "DELETE FROM rollups_hourrollup",
        f"""
        INSERT INTO rollups_hourrollup (hour, window_id, staff_id, branch_id, {", ".join(COLUMNS)})
        SELECT hour, window_id, staff_id, MIN(branch_id), SUM(n_all), SUM(n), SUM(s1), SUM(s2),
               SUM(s3), SUM(s4), SUM(s5), SUM(top2), SUM(level_n), SUM(level_sum), SUM(prompts),
               SUM(answered)
        FROM (
            SELECT {_trunc("r.time")} AS hour, r.window_id, r.staff_id, r.branch_id, 1 AS n_all,
                   k AS n, {_if("score = 1")} AS s1, {_if("score = 2")} AS s2,
                   {_if("score = 3")} AS s3, {_if("score = 4")} AS s4, {_if("score = 5")} AS s5,
                   {_if("score >= key_count - 1")} AS top2,
                   {_if("level_value IS NOT NULL")} AS level_n,
                   CASE WHEN k = 1 THEN COALESCE(level_value, 0) ELSE 0 END AS level_sum,
                   0 AS prompts, 0 AS answered
            FROM (SELECT *, CASE WHEN flags & {excluded} = 0 THEN 1 ELSE 0 END AS k
                  FROM ingest_rating WHERE window_id IS NOT NULL) AS r
            UNION ALL
            SELECT {_trunc("p.issued_at")}, p.window_id, p.staff_id, p.branch_id, 0, 0, 0, 0, 0,
                   0, 0, 0, 0, 0, 1, CASE WHEN p.state = 'answered' THEN 1 ELSE 0 END
            FROM ingest_prompt AS p WHERE p.window_id IS NOT NULL AND p.issued_at IS NOT NULL
        ) AS x
        GROUP BY hour, window_id, staff_id
        """,
    ]


def _trunc(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"date_trunc('hour', {column})"
    return f"strftime('%Y-%m-%d %H:00:00', {column})"


def _if(condition: str) -> str:
    return f"CASE WHEN k = 1 AND {condition} THEN 1 ELSE 0 END"


def totals() -> dict[str, int]:
    sums = HourRollup.objects.aggregate(**{c: Sum(c) for c in COLUMNS})
    return {c: int(sums[c] or 0) for c in COLUMNS}
