"""Report queries over the rollups (``HourRollup`` and ``FlagRollup``), never the raw ratings,
and every statistic from ``ratepad.metrics``.

A ``Cell`` is the sum of rollup rows of one unit (a node, a window, a staff member, an hour);
``Stats`` is what the pages show of it: n, index, CSAT with its Wilson interval, response rate,
misuse rates, and whether n is too small to be a verdict (``small``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, Sum

from ratepad import metrics
from ratepad.errors import MetricsError

from ..org.models import Node, Staff, Window
from ..rollups.models import HourRollup
from ..rollups.service import COLUMNS
from .models import FlagRollup
from .rollup import FLAG_COLUMNS

LEVEL_VALUES: dict[int, float] = {1: 0, 2: 40, 3: 60, 4: 80, 5: 100}  # server.md's default
MIN_N = int(os.environ.get("RATEPAD_MIN_N", "30"))  # below this, values are greyed out
PRIOR_WEIGHT = float(os.environ.get("RATEPAD_PRIOR_WEIGHT", "20"))  # shrinkage pseudo-ratings
TZ = ZoneInfo(os.environ.get("RATEPAD_TIME_ZONE", "Asia/Shanghai"))  # reports' local time


def share(k: int, n: int) -> float:
    """k/n as the metrics contract's CSAT of a two-level scale (hit / miss)."""
    return metrics.csat({0: n - k, 1: k}, top=1)


@dataclass
class Cell:
    v: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS + FLAG_COLUMNS, 0))

    def add(self, row: dict[str, Any]) -> None:
        for c in self.v:
            if c in row:
                self.v[c] += int(row[c] or 0)

    def merge(self, other: Cell) -> None:
        for c, x in other.v.items():
            self.v[c] += x

    @property
    def n(self) -> int:
        return self.v["n"]

    @property
    def counts(self) -> dict[int, int]:
        return {s: self.v[f"s{s}"] for s in range(1, 6)}

    def stats(self, min_n: int = MIN_N) -> dict[str, Any]:
        v, n = self.v, self.n
        out: dict[str, Any] = {
            "n": n, "n_all": v["n_all"], "counts": self.counts, "prompts": v["prompts"],
            "answered": v["answered"], "small": n < min_n, "top2": v["top2"],
            "index": None, "csat": None, "csat_ci": None, "response_rate": None,
            "response_ci": None,
        }  # fmt: skip
        if n:
            out["index"] = metrics.level_index(self.counts, LEVEL_VALUES)
            out["csat"] = share(v["top2"], n)
            out["csat_ci"] = metrics.wilson(v["top2"], n)
        if v["prompts"]:
            answered = min(v["answered"], v["prompts"])
            out["response_rate"] = share(answered, v["prompts"])
            out["response_ci"] = metrics.wilson(answered, v["prompts"])
        if v["n_all"]:
            out["misuse"] = {c: share(min(v[c], v["n_all"]), v["n_all"]) for c in FLAG_COLUMNS}
            out["excluded_rate"] = share(v["n_all"] - n, v["n_all"])
        else:
            out["misuse"] = dict.fromkeys(FLAG_COLUMNS)
            out["excluded_rate"] = None
        return out


@dataclass(frozen=True)
class Scope:
    """What a report covers: a node's subtree, optionally one window or one staff member."""

    node: Node
    since: datetime
    until: datetime
    window: Window | None = None
    staff_id: str | None = None

    def branch_ids(self) -> list[int]:
        return list(
            Node.objects.filter(path__startswith=self.node.path).values_list("pk", flat=True)
        )

    def q(self, since: datetime | None = None, until: datetime | None = None) -> Q:
        q = Q(hour__gte=since or self.since, hour__lt=until or self.until)
        if self.window is not None:
            q &= Q(window_id=self.window.pk)
        else:
            q &= Q(branch_id__in=self.branch_ids())
        if self.staff_id is not None:
            q &= Q(staff_id=self.staff_id)
        return q


def _grouped(scope: Scope, by: str, q: Q | None = None) -> dict[Any, Cell]:
    q = q if q is not None else scope.q()
    out: dict[Any, Cell] = defaultdict(Cell)
    for model, columns in ((HourRollup, COLUMNS), (FlagRollup, FLAG_COLUMNS)):
        rows = model.objects.filter(q).values(by).annotate(**{c: Sum(c) for c in columns})
        for row in rows:
            out[row[by]].add(row)
    return out


def total(scope: Scope, since: datetime | None = None, until: datetime | None = None) -> Cell:
    cell = Cell()
    q = scope.q(since, until)
    for model, columns in ((HourRollup, COLUMNS), (FlagRollup, FLAG_COLUMNS)):
        cell.add(model.objects.filter(q).aggregate(**{c: Sum(c) for c in columns}))
    return cell


def children(scope: Scope) -> list[dict[str, Any]]:
    """The next level of the drill-down: child nodes, else windows, else staff members."""
    node = scope.node
    if scope.window is not None or scope.staff_id is not None:
        return []
    kids = list(Node.objects.filter(parent=node).order_by("code"))
    if kids:
        by_branch = _grouped(scope, "branch_id")
        paths = dict(Node.objects.filter(path__startswith=node.path).values_list("pk", "path"))
        cells: dict[int, Cell] = {k.pk: Cell() for k in kids}
        for branch_id, cell in by_branch.items():
            path = paths.get(branch_id, "")
            for k in kids:
                if path.startswith(k.path):
                    cells[k.pk].merge(cell)
        return [{"kind": "node", "code": k.code, "name": k.name, "cell": cells[k.pk]} for k in kids]
    by_window = _grouped(scope, "window_id")
    windows = Window.objects.filter(branch=node).order_by("code")
    return [
        {"kind": "window", "code": w.code, "name": w.name, "cell": by_window.get(w.pk, Cell())}
        for w in windows
    ]


def staff_rows(scope: Scope) -> list[dict[str, Any]]:
    by_staff = _grouped(scope, "staff_id")
    names = dict(Staff.objects.filter(staff_id__in=list(by_staff)).values_list("staff_id", "name"))
    return [
        {"kind": "staff", "code": s or "-", "name": names.get(s, ""), "cell": c}
        for s, c in sorted(by_staff.items())
    ]


def ranking(rows: Iterable[dict[str, Any]], parent: Cell) -> list[dict[str, Any]]:
    """Rows with their shrunk index and CSAT (toward the parent's), best first."""
    p = parent.stats()
    out = []
    for row in rows:
        s = row["cell"].stats()
        prior_index = p["index"] if p["index"] is not None else 0.0
        prior_rate = p["csat"] if p["csat"] is not None else 0.0
        row = {
            **row,
            "stats": s,
            "shrunk_index": metrics.shrunk_index(
                s["index"] or 0.0, s["n"], prior_index, PRIOR_WEIGHT
            ),
            "shrunk_csat": metrics.shrunk_rate(s["top2"], s["n"], prior_rate, PRIOR_WEIGHT),
        }
        out.append(row)
    out.sort(key=lambda r: -r["shrunk_index"])
    return out


def funnel(rows: Iterable[dict[str, Any]], parent: Cell) -> dict[str, Any]:
    """Points (n, CSAT) of the units and the 95 % / 99.8 % limits around the parent's CSAT."""
    p = parent.stats()
    points = [
        {"code": r["code"], "n": r["cell"].n, "csat": r["cell"].stats()["csat"]}
        for r in rows
        if r["cell"].n
    ]
    if p["csat"] is None or not points:
        return {"p0": None, "points": points, "limits": []}
    top = max(pt["n"] for pt in points)
    ns = sorted({max(1, round(top * i / 40)) for i in range(1, 41)} | {pt["n"] for pt in points})
    limits = []
    for n in ns:
        lo95, hi95 = metrics.funnel_limits(p["csat"], n, 0.95)
        lo998, hi998 = metrics.funnel_limits(p["csat"], n, 0.998)
        limits.append({"n": n, "lo95": lo95, "hi95": hi95, "lo998": lo998, "hi998": hi998})
    for pt in points:
        lo, hi = metrics.funnel_limits(p["csat"], pt["n"], 0.998)
        pt["outside"] = not lo <= pt["csat"] <= hi
    return {"p0": p["csat"], "points": points, "limits": limits}


def by_hour(scope: Scope) -> dict[datetime, Cell]:
    return dict(_grouped(scope, "hour"))


def heatmap_and_flow(scope: Scope) -> dict[str, Any]:
    """Hour × weekday counts (local time), customers per hour of day, a daily series."""
    hours = by_hour(scope)
    grid = [[0] * 24 for _ in range(7)]
    flow = [0] * 24
    daily: dict[date, Cell] = defaultdict(Cell)
    days: set[date] = set()
    for hour, cell in hours.items():
        local = hour.astimezone(TZ)
        grid[local.weekday()][local.hour] += cell.v["n_all"]
        flow[local.hour] += cell.v["n_all"]
        daily[local.date()].merge(cell)
        days.add(local.date())
    ndays = max(1, len(days))
    series = []
    for d in sorted(daily):
        s = daily[d].stats()
        series.append({"day": d.isoformat(), "n": s["n"], "index": s["index"], "csat": s["csat"]})
    return {
        "heatmap": [[h, wd, grid[wd][h]] for wd in range(7) for h in range(24)],
        "flow": [round(x / ndays, 2) for x in flow],
        "days": ndays,
        "series": series,
    }


def compare(scope: Scope) -> dict[str, Any]:
    """环比 (previous period of the same length) and 同比 (same period a year earlier)."""
    span = scope.until - scope.since
    now = total(scope)
    out: dict[str, Any] = {}
    year = timedelta(days=365 if span < timedelta(days=365) else 366)
    for name, delta in (("previous", span), ("last_year", year)):
        before = total(scope, scope.since - delta, scope.until - delta)
        row: dict[str, Any] = {
            "since": scope.since - delta,
            "until": scope.until - delta,
            "n": before.n,
            "csat": before.stats()["csat"],
        }
        try:
            row["test"] = metrics.two_proportions(now.v["top2"], now.n, before.v["top2"], before.n)
        except MetricsError:
            row["test"] = None  # one of the periods has no ratings
        out[name] = row
    return out


def staff_efficiency(scope: Scope) -> list[dict[str, Any]]:
    """Customers served (prompts) per logged-in hour and the mean time between customers, per
    staff member, from the login history and the rollups."""
    from ..ingest.models import StaffSession

    sessions = StaffSession.objects.filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=scope.since),
        started_at__lt=scope.until,
    )
    if scope.window is not None:
        sessions = sessions.filter(window_id=scope.window.pk)
    else:
        sessions = sessions.filter(branch_id__in=scope.branch_ids())
    if scope.staff_id is not None:
        sessions = sessions.filter(staff_id=scope.staff_id)
    logged: dict[str, float] = defaultdict(float)
    end_cap = min(scope.until, datetime.now(TZ))
    for s in sessions.values("staff_id", "started_at", "ended_at"):
        start = max(s["started_at"], scope.since)
        end = min(s["ended_at"] or end_cap, scope.until)
        if end > start:
            logged[s["staff_id"]] += (end - start).total_seconds() / 3600
    out = []
    for row in staff_rows(scope):
        served = row["cell"].v["prompts"] or row["cell"].v["n_all"]
        hours = logged.get(row["code"], 0.0)
        out.append(
            {
                **row,
                "served": served,
                "hours": round(hours, 2),
                "per_hour": round(served / hours, 2) if hours > 0 else None,
                "minutes_between": round(hours * 60 / served, 1) if served and hours > 0 else None,
            }
        )
    return out
