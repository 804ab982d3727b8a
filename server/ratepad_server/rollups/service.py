"""Rollups: counts per (hour, window, staff), (local day, window, staff) and (local day, node,
shard), added to in each ingest transaction (``Deltas``), and rebuilt from the raw rows on
demand (``rebuild``: the repair tool, and the check that incremental and rebuilt agree).

Rules: a rating counts for KPIs (``n``, the per-score counts, the level sum) unless it carries
one of ``KPI_EXCLUDED`` flags; it is kept and counted in ``n_all`` anyway. "Top two" is the top
two levels of the keypad's own scale (score >= key_count - 1), so 3-, 4- and 5-key keypads mix.
Days and hours of the day are local (``TZ``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from ratepad.flags import APPEAL_UPHELD as APPEAL_UPHELD  # the rollups' callers use them here
from ratepad.flags import KPI_EXCLUDED as KPI_EXCLUDED
from ratepad.flags import ROLLUP_FLAGS

from ..envconf import parsed
from ..org.models import Node
from .models import SHARDS

# the reports' local time
TZ = parsed("RATEPAD_TIME_ZONE", "Asia/Shanghai", ZoneInfo, "a time zone such as Asia/Shanghai")
KPI_COLUMNS = ("n_all", "n", "s1", "s2", "s3", "s4", "s5", "top2", "level_n", "level_sum",
               "prompts", "answered")  # fmt: skip
# a column per flag the rollups count, named as the flag (the models' fields match these)
FLAG_COLUMNS = tuple(f.name for f in ROLLUP_FLAGS)
FLAG_BITS = tuple(f.bit for f in ROLLUP_FLAGS)
COLUMNS = KPI_COLUMNS + FLAG_COLUMNS
HOURS = tuple(f"h{h:02d}" for h in range(24))
_N_ALL, _N, _TOP2, _LEVEL_N, _LEVEL_SUM, _PROMPTS, _ANSWERED = 0, 1, 7, 8, 9, 10, 11
_FLAG0 = len(KPI_COLUMNS)
_WIDTH = len(COLUMNS)


@dataclass(frozen=True)
class Upsert:
    """``INSERT … VALUES (…), (…) ON CONFLICT … DO UPDATE SET c = c + excluded.c``: one
    statement for many rows (rows are locked in the order given)."""

    table: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    chunk: int = 200  # rows per statement (SQLite: at most 32 766 parameters)

    def run(self, cur: Any, rows: Sequence[Sequence[Any]]) -> None:
        names = (*self.keys, *self.columns)
        one = "(" + ", ".join(["%s"] * len(names)) + ")"
        tail = (
            f" ON CONFLICT ({', '.join(k for k in self.keys if k != 'branch_id')}) DO UPDATE SET "
            + ", ".join(f"{c} = {self.table}.{c} + excluded.{c}" for c in self.columns)
        )
        for i in range(0, len(rows), self.chunk):
            part = rows[i : i + self.chunk]
            cur.execute(
                f"INSERT INTO {self.table} ({', '.join(names)}) VALUES "
                + ", ".join([one] * len(part)) + tail,
                [v for row in part for v in row],
            )  # fmt: skip


_HOUR_UPSERT = Upsert("rollups_hourrollup", ("hour", "window_id", "staff_id", "branch_id"),
                      COLUMNS)  # fmt: skip
_DAY_UPSERT = Upsert("rollups_dayrollup", ("day", "window_id", "staff_id", "branch_id"),
                     COLUMNS + HOURS)  # fmt: skip
_NODE_UPSERT = Upsert("rollups_nodedayrollup", ("node_id", "day", "shard"), COLUMNS + HOURS)

HourKey = tuple[datetime, int, str]  # UTC hour, window id, staff id
DayKey = tuple[date, int, str]  # local day, window id, staff id


def rating_vector(score: int, key_count: int, level_value: int | None, flags: int) -> list[int]:
    """What one rating adds to a rollup row (``COLUMNS`` order)."""
    v = [0] * _WIDTH
    v[_N_ALL] = 1
    for i, bit in enumerate(FLAG_BITS):
        if flags & bit:
            v[_FLAG0 + i] = 1
    if flags & KPI_EXCLUDED:
        return v
    v[_N] = 1
    if 1 <= score <= 5:
        v[_N + score] = 1
    if score >= key_count - 1:
        v[_TOP2] = 1
    if level_value is not None:
        v[_LEVEL_N] = 1
        v[_LEVEL_SUM] = level_value
    return v


@dataclass
class Deltas:
    """What one batch adds to the rollups; ``write`` applies it in the caller's transaction."""

    hours: dict[HourKey, list[int]] = field(default_factory=dict)
    days: dict[DayKey, list[int]] = field(default_factory=dict)  # COLUMNS + HOURS
    branch: dict[tuple[int, str], int] = field(default_factory=dict)  # (window, staff) → node

    def _add(
        self, when: datetime, window_id: int, staff_id: str, branch_id: int, v: Sequence[int]
    ) -> None:
        self.branch[(window_id, staff_id)] = branch_id
        hour = self.hours.setdefault((hour_of(when), window_id, staff_id), [0] * _WIDTH)
        local = when.astimezone(TZ)
        day = self.days.setdefault((local.date(), window_id, staff_id), [0] * (_WIDTH + 24))
        for i, x in enumerate(v):
            if x:
                hour[i] += x
                day[i] += x
        day[_WIDTH + local.hour] += v[_N_ALL]

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
        *,
        exclude: bool = False,
    ) -> None:
        """A new rating; ``exclude``: an upheld appeal against this stored one (``flags`` as
        stored, without ``APPEAL_UPHELD``), which leaves the KPIs and stays in ``n_all``."""
        v = rating_vector(score, key_count, level_value, flags)
        if exclude:
            kpi = v[_N:_PROMPTS] if not flags & KPI_EXCLUDED else [0] * (_PROMPTS - _N)
            v = [0] * _WIDTH
            v[_N:_PROMPTS] = [-x for x in kpi]
            v[_FLAG0 + FLAG_BITS.index(APPEAL_UPHELD)] = 1
        self._add(when, window_id, staff_id, branch_id, v)

    def add_prompt(
        self,
        issued: datetime,
        window_id: int,
        branch_id: int,
        staff_id: str,
        prompts: int,
        answered: int,
    ) -> None:
        v = [0] * _WIDTH
        v[_PROMPTS], v[_ANSWERED] = prompts, answered
        self._add(issued, window_id, staff_id, branch_id, v)

    def node_rows(self) -> dict[tuple[int, date, int], list[int]]:
        """The day rows summed per (node, day, shard) for every node above each window."""
        above = ancestors({self.branch[(k[1], k[2])] for k in self.days})
        out: dict[tuple[int, date, int], list[int]] = {}
        for (day, window_id, staff_id), row in self.days.items():
            branch_id = self.branch[(window_id, staff_id)]
            for node_id in above.get(branch_id, [branch_id]):
                acc = out.setdefault((node_id, day, branch_id % SHARDS), [0] * len(row))
                for i, x in enumerate(row):
                    acc[i] += x
        return out

    def write(self, *, nodes: bool = True) -> None:
        """Upsert, table by table in key order: two batches touching the same rows lock them
        in the same order, so concurrent ingests cannot deadlock. The node rows, shared with
        other windows, come last: they are held for the shortest time before the commit."""
        if not self.hours and not self.days:
            return
        adapt = connection.ops.adapt_datetimefield_value  # SQLite keeps datetimes as text
        adapt_day = connection.ops.adapt_datefield_value
        with transaction.atomic(), connection.cursor() as cur:
            _HOUR_UPSERT.run(cur, [
                [adapt(k[0]), k[1], k[2], self.branch[(k[1], k[2])], *self.hours[k]]
                for k in sorted(self.hours)
            ])  # fmt: skip
            _DAY_UPSERT.run(cur, [
                [adapt_day(k[0]), k[1], k[2], self.branch[(k[1], k[2])], *self.days[k]]
                for k in sorted(self.days)
            ])  # fmt: skip
            if nodes:
                node_rows = self.node_rows()
                _NODE_UPSERT.run(cur, [
                    [k[0], adapt_day(k[1]), k[2], *node_rows[k]] for k in sorted(node_rows)
                ])  # fmt: skip


def ancestors(branch_ids: Iterable[int]) -> dict[int, list[int]]:
    """node id → the ids of the node and every node above it (from the materialised path)."""
    # locked: a move in the organisation file (which rewrites paths) waits for this batch
    nodes = Node.objects.select_for_update().filter(pk__in=sorted(set(branch_ids)))
    paths = dict(nodes.values_list("pk", "path"))
    codes = {c for p in paths.values() for c in p.strip("/").split("/") if c}
    ids = dict(Node.objects.filter(code__in=codes).values_list("code", "pk"))
    return {
        pk: [ids[c] for c in path.strip("/").split("/") if c in ids] for pk, path in paths.items()
    }


def hour_of(when: datetime) -> datetime:
    """The UTC hour ``when`` falls in (the hourly rollup's key)."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# -- rebuilding from the raw rows ----------------------------------------------------------------
TABLES = ("rollups_hourrollup", "rollups_dayrollup", "rollups_nodedayrollup")


def rebuild() -> None:
    """Every rollup again from ``ingest_rating`` and ``ingest_prompt``, in one transaction."""
    with transaction.atomic(), connection.cursor() as cur:
        _lock(cur, TABLES)
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
        if connection.vendor == "postgresql":
            for sql in _rebuild_pg_sql():
                cur.execute(sql, {"tz": str(TZ)} if "%(tz)s" in sql else None)
        else:
            _rebuild_rows()
        _rebuild_nodes(cur)


def rebuild_nodes() -> None:
    """The node rows again from the day rows (after nodes moved in the organisation file)."""
    with transaction.atomic(), connection.cursor() as cur:
        _lock(cur, TABLES[2:])
        cur.execute("DELETE FROM rollups_nodedayrollup")
        _rebuild_nodes(cur)


def _lock(cur: Any, tables: Sequence[str]) -> None:
    """PostgreSQL: concurrent ingests wait (their rollup writes would be lost or doubled by a
    rebuild); what they committed before is in the rebuild, what they add after is on top."""
    if connection.vendor == "postgresql":
        for table in tables:  # the order ingests write them in
            cur.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row without its id, sorted (zero rows left out): for comparisons."""
    from .models import DayRollup, HourRollup, NodeDayRollup

    out: dict[str, list[tuple[Any, ...]]] = {}
    for model, keys, columns in (
        (HourRollup, ("hour", "window_id", "staff_id"), COLUMNS),
        (DayRollup, ("day", "window_id", "staff_id"), COLUMNS + HOURS),
        (NodeDayRollup, ("node_id", "day", "shard"), COLUMNS + HOURS),
    ):
        rows = model.objects.values_list(*keys, *columns)
        out[model._meta.db_table] = sorted(tuple(r) for r in rows if any(r[len(keys) :]))
    return out


def _rebuild_rows() -> None:
    """The hour and day rows through ``Deltas`` (any database), a chunk at a time."""
    from ..ingest.models import Prompt, Rating

    ratings = (
        Rating.objects.filter(window_id__isnull=False)
        .values_list(
            "time",
            "window_id",
            "branch_id",
            "staff_id",
            "score",
            "key_count",
            "level_value",
            "flags",
        )
        .order_by("time", "id")
    )
    deltas = Deltas()
    for when, window_id, branch_id, staff_id, score, key_count, level, flags in ratings.iterator(
        chunk_size=5000
    ):
        deltas.add_rating(when, window_id, branch_id or 0, staff_id, score, key_count, level,
                          flags)  # fmt: skip
        if len(deltas.hours) >= 5000:
            deltas.write(nodes=False)
            deltas = Deltas()
    prompts = Prompt.objects.filter(window_id__isnull=False, issued_at__isnull=False)
    for issued, window_id, branch_id, staff_id, state in prompts.values_list(
        "issued_at", "window_id", "branch_id", "staff_id", "state"
    ).iterator(chunk_size=5000):
        if issued is None:
            continue
        deltas.add_prompt(issued, window_id, branch_id or 0, staff_id, 1, int(state == "answered"))
        if len(deltas.hours) >= 5000:
            deltas.write(nodes=False)
            deltas = Deltas()
    deltas.write(nodes=False)


def _sum(columns: Sequence[str]) -> str:
    return ", ".join(f"SUM({c})" for c in columns)


def _rebuild_nodes(cur: Any) -> None:
    """Node rows from day rows, joined to every node whose path starts the branch's path."""
    names = ", ".join(COLUMNS + HOURS)
    cur.execute(
        f"INSERT INTO rollups_nodedayrollup (node_id, day, shard, {names})"
        f" SELECT a.id, d.day, d.branch_id % {SHARDS}, {_sum(COLUMNS + HOURS)}"
        " FROM rollups_dayrollup AS d JOIN org_node AS b ON b.id = d.branch_id"
        " JOIN org_node AS a ON substr(b.path, 1, length(a.path)) = a.path"
        f" GROUP BY a.id, d.day, d.branch_id % {SHARDS}"
    )


def _rebuild_pg_sql() -> Sequence[str]:
    """The hour and day rows in SQL (PostgreSQL: ten million ratings in minutes)."""
    excluded = int(KPI_EXCLUDED)
    k = f"(flags & {excluded} = 0)::int"
    flags = ", ".join(f"(flags & {bit} <> 0)::int AS {c}"
                      for bit, c in zip(FLAG_BITS, FLAG_COLUMNS, strict=True))  # fmt: skip
    local = "(r.time AT TIME ZONE %(tz)s)"
    ratings = f"""
        SELECT date_trunc('hour', r.time) AS hour, {local}::date AS day,
               extract(hour FROM {local})::int AS hod, r.window_id, r.staff_id, r.branch_id,
               1 AS n_all, {k} AS n,
               {", ".join(f"({k} = 1 AND score = {s})::int AS s{s}" for s in range(1, 6))},
               ({k} = 1 AND score >= key_count - 1)::int AS top2,
               ({k} = 1 AND level_value IS NOT NULL)::int AS level_n,
               CASE WHEN {k} = 1 THEN COALESCE(level_value, 0) ELSE 0 END AS level_sum,
               0 AS prompts, 0 AS answered, {flags}
        FROM ingest_rating AS r WHERE r.window_id IS NOT NULL
        UNION ALL
        SELECT date_trunc('hour', p.issued_at), (p.issued_at AT TIME ZONE %(tz)s)::date, -1,
               p.window_id, p.staff_id, p.branch_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
               (p.state = 'answered')::int, 0, 0, 0, 0, 0, 0
        FROM ingest_prompt AS p WHERE p.window_id IS NOT NULL AND p.issued_at IS NOT NULL
    """
    hours = ", ".join(f"SUM(CASE WHEN hod = {h} THEN n_all ELSE 0 END)" for h in range(24))
    return [
        f"CREATE TEMPORARY TABLE rollup_source ON COMMIT DROP AS {ratings}",
        f"""INSERT INTO rollups_hourrollup (hour, window_id, staff_id, branch_id,
                                           {", ".join(COLUMNS)})
            SELECT hour, window_id, staff_id, MIN(branch_id), {_sum(COLUMNS)}
            FROM rollup_source GROUP BY hour, window_id, staff_id""",
        f"""INSERT INTO rollups_dayrollup (day, window_id, staff_id, branch_id,
                                          {", ".join(COLUMNS + HOURS)})
            SELECT day, window_id, staff_id, MIN(branch_id), {_sum(COLUMNS)}, {hours}
            FROM rollup_source GROUP BY day, window_id, staff_id""",
    ]
