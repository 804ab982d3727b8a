"""Report queries over the rollups, never the raw ratings, and every statistic from
``ratepad.metrics``.

Where the rows come from: whole local days of a node's subtree from ``NodeDayRollup`` (a few
rows per day, whatever the number of windows below), whole days of a window or a staff member
from ``DayRollup``, and the hours of a period that does not start or end at local midnight from
``HourRollup`` (the summary API takes any instant).

A ``Cell`` is the sum of rollup rows of one unit (a node, a window, a staff member, a day);
``Stats`` is what the pages show of it: n, index, CSAT with its Wilson interval, response rate,
misuse rates, and whether n is too small to be a verdict (``small``).

* ``RATEPAD_MIN_N`` (30): below this many ratings a figure is greyed out as too small.
* ``RATEPAD_PRIOR_WEIGHT`` (20): the pseudo-ratings a ranking's shrinkage adds toward the
  parent's mean, so a window with three ratings does not top the list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from django.db.models import Q, QuerySet, Sum

from ratepad import metrics
from ratepad.errors import MetricsError

from ..envconf import integer, number
from ..org.models import Node, Staff, Window
from ..rollups.models import DayRollup, HourRollup, NodeDayRollup
from ..rollups.service import COLUMNS, FLAG_COLUMNS, HOURS, TZ, hour_of

__all__ = ["TZ"]
LEVEL_VALUES: dict[int, float] = {1: 0, 2: 40, 3: 60, 4: 80, 5: 100}  # server.md's default
MIN_N = integer("RATEPAD_MIN_N", 30, 0, 1_000_000)  # below this, values are greyed out
PRIOR_WEIGHT = number("RATEPAD_PRIOR_WEIGHT", 20, 0, 1_000_000)  # shrinkage pseudo-ratings
_SUMS = {c: Sum(c) for c in COLUMNS}
_SUMS_HOURS = {**_SUMS, **{h: Sum(h) for h in HOURS}}


def share(k: int, n: int) -> float:
    """k/n as the metrics contract's CSAT of a two-level scale (hit / miss)."""
    return metrics.csat({0: n - k, 1: k}, top=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), TZ)


@dataclass
class Cell:
    v: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    hours: list[int] = field(default_factory=lambda: [0] * 24)  # ratings per local hour
    _stats: tuple[Any, dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    def add(self, row: dict[str, Any]) -> None:
        for c in self.v:
            self.v[c] += int(row.get(c) or 0)
        if HOURS[0] in row:
            for h, name in enumerate(HOURS):
                self.hours[h] += int(row[name] or 0)

    def merge(self, other: Cell) -> None:
        for c, x in other.v.items():
            self.v[c] += x
        for h, x in enumerate(other.hours):
            self.hours[h] += x

    @property
    def n(self) -> int:
        return self.v["n"]

    @property
    def counts(self) -> dict[int, int]:
        return {s: self.v[f"s{s}"] for s in range(1, 6)}

    def stats(self, min_n: int = MIN_N) -> dict[str, Any]:
        """The figures of this cell (computed once per cell and ``min_n``: a page asks for
        them from the table, the ranking and the funnel)."""
        key = (min_n, tuple(self.v.values()))
        if self._stats is not None and self._stats[0] == key:
            return self._stats[1]
        out = self._compute(min_n)
        self._stats = (key, out)
        return out

    def _compute(self, min_n: int) -> dict[str, Any]:
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
    """What a report covers: a node's subtree, optionally one window or one staff member, from
    ``since`` to ``until`` (any instants; the web's periods are whole local days)."""

    node: Node
    since: datetime
    until: datetime
    window: Window | None = None
    staff_id: str | None = None

    @cached_property
    def paths(self) -> dict[int, str]:
        """id → path of every node in the subtree."""
        return dict(Node.objects.filter(path__startswith=self.node.path).values_list("pk", "path"))

    def branch_ids(self) -> list[int]:
        return list(self.paths)

    def shifted(self, since: datetime, until: datetime) -> Scope:
        return Scope(self.node, since, until, self.window, self.staff_id)

    @property
    def whole_node(self) -> bool:
        return self.window is None and self.staff_id is None

    def parts(self) -> tuple[date, date, list[tuple[datetime, datetime]]]:
        """Whole local days [first, end) inside the period, and the hour ranges around them
        (hours that start in the range count)."""
        since = self.since.astimezone(TZ)
        until = self.until.astimezone(TZ)
        first = since.date() if since == midnight(since.date()) else since.date() + timedelta(1)
        end = until.date()
        if first >= end:
            return first, first, [(self.since, self.until)]
        edges = []
        if self.since < midnight(first):
            edges.append((self.since, midnight(first)))
        if self.until > midnight(end):
            edges.append((midnight(end), self.until))
        return first, end, edges

    def filter(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        """Rows (with ``window_id``, ``branch_id``, ``staff_id``) of the scope's units."""
        if self.window is not None:
            qs = qs.filter(window_id=self.window.pk)
        else:
            qs = qs.filter(branch_id__in=self.branch_ids())
        if self.staff_id is not None:
            qs = qs.filter(staff_id=self.staff_id)
        return qs


def _sum_rows(qs: QuerySet[Any], group: str | None, sums: dict[str, Any]) -> list[dict[str, Any]]:
    if group is None:
        return [qs.aggregate(**sums)]
    return list(qs.values(group).annotate(**sums).order_by())


def _cells(scope: Scope, by: str | None, node_ids: list[int] | None = None) -> dict[Any, Cell]:
    """Cells of the scope grouped ``by`` None (one cell), "node" (``node_ids``' subtrees),
    "window_id", "staff_id" or "day" (local days, with the ratings per local hour)."""
    first, end, edges = scope.parts()
    out: dict[Any, Cell] = defaultdict(Cell)
    sums = _SUMS_HOURS if by == "day" else _SUMS
    if first < end:
        if by == "node" or (scope.whole_node and by in (None, "day")):
            ids = (node_ids or []) if by == "node" else [scope.node.pk]
            qs: QuerySet[Any] = NodeDayRollup.objects.filter(
                day__gte=first, day__lt=end, node_id__in=ids
            )
            group = "node_id" if by == "node" else by
        else:
            qs = scope.filter(DayRollup.objects.filter(day__gte=first, day__lt=end))
            group = by
        for row in _sum_rows(qs, group, sums):
            out[row[group] if group else None].add(row)
    kids = {pk: scope.paths[pk] for pk in node_ids or [] if pk in scope.paths}
    for lo, hi in edges:
        qs = scope.filter(HourRollup.objects.filter(hour__gte=hour_of(lo), hour__lt=hi))
        group = {"node": "branch_id", "day": "hour"}.get(by or "", by)
        for row in _sum_rows(qs, group, _SUMS):
            if by == "node":
                path = scope.paths.get(row["branch_id"], "")
                for pk, kid_path in kids.items():
                    if path.startswith(kid_path):
                        out[pk].add(row)
            elif by == "day":
                local = row["hour"].astimezone(TZ)
                cell = out[local.date()]
                cell.add(row)
                cell.hours[local.hour] += int(row["n_all"] or 0)
            else:
                out[row[group] if group else None].add(row)
    return out


def total(scope: Scope) -> Cell:
    return _cells(scope, None).get(None) or Cell()


def children(scope: Scope) -> list[dict[str, Any]]:
    """The next level of the drill-down: child nodes, else windows, else staff members."""
    node = scope.node
    if scope.window is not None or scope.staff_id is not None:
        return []
    kids = list(Node.objects.filter(parent=node).order_by("code"))
    if kids:
        cells = _cells(scope, "node", [k.pk for k in kids])
        return [{"kind": "node", "code": k.code, "name": k.name, "cell": cells.get(k.pk, Cell())}
                for k in kids]  # fmt: skip
    by_window = _cells(scope, "window_id")
    windows = Window.objects.filter(branch=node).order_by("code")
    return [
        {"kind": "window", "code": w.code, "name": w.name, "cell": by_window.get(w.pk, Cell())}
        for w in windows
    ]


def staff_rows(scope: Scope) -> list[dict[str, Any]]:
    by_staff = _cells(scope, "staff_id")
    names = dict(Staff.objects.filter(staff_id__in=list(by_staff)).values_list("staff_id", "name"))
    return [
        {"kind": "staff", "code": s or "-", "name": names.get(s, ""), "cell": c}
        for s, c in sorted(by_staff.items())
    ]


def summary(
    node: Node, since: datetime | None, until: datetime | None, staff_id: str | None = None
) -> dict[str, Any]:
    """The summary API's figures of ``node``'s subtree (the contract in server.md)."""
    since = since or datetime(2000, 1, 1, tzinfo=UTC)
    until = until or midnight(datetime.now(TZ).date() + timedelta(days=2))
    t = total(Scope(node, since, until, staff_id=staff_id)).v
    n = t["n"]
    return {
        "node": node.code,
        "n": n,
        "n_all": t["n_all"],
        "counts": {str(s): t[f"s{s}"] for s in range(1, 6)},
        # unrounded: a program reading the API rounds as it needs (the pages round on screen)
        "index": t["level_sum"] / t["level_n"] if t["level_n"] else None,
        "csat": share(t["top2"], n) if n else None,
        "csat_ci": list(metrics.wilson(t["top2"], n)) if n else None,
        "response_rate": share(min(t["answered"], t["prompts"]), t["prompts"])
        if t["prompts"]
        else None,
        "prompts": t["prompts"],
    }


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


FUNNEL_CONFIDENCE = 0.998  # a unit outside these limits differs from its parent (not chance)
SIGNIFICANT_P = 0.05  # a change against the previous period with p below this is significant


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
        pt.update(funnel_verdict(p["csat"], pt["n"], pt["csat"]))
    return {"p0": p["csat"], "points": points, "limits": limits}


def funnel_verdict(p0: float, n: int, csat: float) -> dict[str, Any]:
    """A unit's funnel limits (``FUNNEL_CONFIDENCE``) around its parent's CSAT ``p0`` and
    whether its own CSAT lies ``outside`` them."""
    lo, hi = metrics.funnel_limits(p0, n, FUNNEL_CONFIDENCE)
    return {"outside": not lo <= csat <= hi, "lo": lo, "hi": hi}


def heatmap_and_flow(scope: Scope) -> dict[str, Any]:
    """Hour × weekday counts (local time), customers per hour of day, a daily series."""
    daily = _cells(scope, "day")
    grid = [[0] * 24 for _ in range(7)]
    flow = [0] * 24
    series = []
    for day in sorted(daily):
        cell = daily[day]
        for h, x in enumerate(cell.hours):
            grid[day.weekday()][h] += x
            flow[h] += x
        s = cell.stats()
        series.append({"day": day.isoformat(), "n": s["n"], "index": s["index"], "csat": s["csat"]})
    ndays = max(1, len(daily))
    return {
        "heatmap": [[h, wd, grid[wd][h]] for wd in range(7) for h in range(24)],
        "flow": [round(x / ndays, 2) for x in flow],
        "days": ndays,
        "series": series,
    }


Span = tuple[datetime, datetime]  # [since, until)


def compare(
    scope: Scope,
    now: Cell | None = None,
    previous: Span | None = None,
    last_year: Span | None = None,
) -> dict[str, Any]:
    """环比 (``previous``; default: the period of the same length just before) and 同比
    (``last_year``; default: shifted by a year), each with its dates, n, CSAT and the test of
    the difference (None when either period has no ratings)."""
    span = scope.until - scope.since
    now = now if now is not None else total(scope)
    out: dict[str, Any] = {}
    year = timedelta(days=365 if span < timedelta(days=365) else 366)
    spans = {
        "previous": previous or (scope.since - span, scope.until - span),
        "last_year": last_year or (scope.since - year, scope.until - year),
    }
    for name, (since, until) in spans.items():
        before = total(scope.shifted(since, until))
        row: dict[str, Any] = {
            "since": since,
            "until": until,
            "last": until - timedelta(days=1),
            "n": before.n,
            "csat": before.stats()["csat"],
        }
        try:
            row["test"] = metrics.two_proportions(now.v["top2"], now.n, before.v["top2"], before.n)
        except MetricsError:
            row["test"] = None  # one of the periods has no ratings
        out[name] = row
    return out


def staff_efficiency(
    scope: Scope, rows: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Customers served (prompts) per logged-in hour and the mean time between customers, per
    staff member, from the login history and the rollups."""
    from ..ingest.models import StaffSession

    sessions = StaffSession.objects.filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=scope.since),
        started_at__lt=scope.until,
    )
    sessions = scope.filter(sessions)
    logged: dict[str, float] = defaultdict(float)
    end_cap = min(scope.until, datetime.now(TZ))
    for s in sessions.values("staff_id", "started_at", "ended_at"):
        start = max(s["started_at"], scope.since)
        end = min(s["ended_at"] or end_cap, scope.until)
        if end > start:
            logged[s["staff_id"]] += (end - start).total_seconds() / 3600
    out = []
    for row in rows if rows is not None else staff_rows(scope):
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


def significance(
    rows: list[dict[str, Any]], parent: Cell, before: dict[str, Cell] | None = None
) -> dict[str, dict[str, Any]]:
    """Per unit code, what its table row says of it: ``badge`` "small" (fewer than ``MIN_N``
    ratings: no verdict), "low" (CSAT below the parent's funnel limits, the funnel plot's
    outliers), "improved" (CSAT up against ``before``, the unit's previous period, by the
    two-proportion test with p < ``SIGNIFICANT_P``) or None; with the funnel's ``lo``/``hi``
    and the test (``change``) behind it."""
    p0 = parent.stats()["csat"]
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        cell: Cell = row["cell"]
        pt = None  # the unit's point of the funnel plot (``funnel``), without the curves
        if p0 is not None and cell.n and cell.n >= MIN_N:  # below MIN_N: no verdict
            csat = cell.stats()["csat"]
            pt = {"code": row["code"], "n": cell.n, "csat": csat}
            pt.update(funnel_verdict(p0, cell.n, csat))
        earlier = (before or {}).get(row["code"])
        change = None
        if earlier is not None and earlier.n and cell.n:
            change = metrics.two_proportions(cell.v["top2"], cell.n, earlier.v["top2"], earlier.n)
        badge = None
        if cell.n < MIN_N:
            badge = "small"
        elif pt is not None and pt["outside"] and pt["csat"] < (p0 or 0):
            badge = "low"
        elif change is not None and change["p"] < SIGNIFICANT_P and change["diff"] > 0:
            badge = "improved"
        out[row["code"]] = {"badge": badge, "point": pt, "change": change}
    return out


def below_parent(scope: Scope) -> list[dict[str, Any]]:
    """The windows and staff members of the subtree's branches that the branch's report marks
    significantly low (``significance``: outside the funnel below the branch's CSAT, at least
    ``MIN_N`` ratings), worst first; three grouped queries whatever the number of branches."""
    if scope.window is not None or scope.staff_id is not None:
        return []
    windows_of = Window.objects.filter(branch_id__in=scope.branch_ids())
    staff_of = Staff.objects.filter(branch_id__in=scope.branch_ids())
    # the nodes that hold windows or staff members: the branches
    held = {*windows_of.values_list("branch_id", flat=True),
            *staff_of.values_list("branch_id", flat=True)}  # fmt: skip
    branches = {n.pk: n for n in Node.objects.filter(pk__in=held)}
    totals = _cells(scope, "node", list(branches))
    windows = _cells(scope, "window_id")
    staff = _cells(scope, "staff_id")
    units: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for w in windows_of.order_by("code"):
        units[w.branch_id].append({"kind": "window", "code": w.code, "name": w.name,
                                   "cell": windows.get(w.pk, Cell())})  # fmt: skip
    people = staff_of.filter(staff_id__in=[s for s in staff if s])
    staff_units: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in people.order_by("staff_id"):
        staff_units[s.branch_id].append({"kind": "staff", "code": s.staff_id, "name": s.name,
                                         "cell": staff[s.staff_id]})  # fmt: skip
    out = []
    for pk, branch in branches.items():
        parent = totals.get(pk, Cell())
        for rows in (units[pk], staff_units[pk]):
            verdicts = significance(rows, parent)
            for row in rows:
                verdict = verdicts[row["code"]]
                if verdict["badge"] == "low":
                    out.append({**row, "branch": branch, "stats": row["cell"].stats(),
                                "parent": parent.stats(), **verdict})  # fmt: skip
    out.sort(key=lambda r: r["point"]["csat"] - r["parent"]["csat"])
    return out


def efficiency_total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``staff_efficiency``'s rows summed: the level's customers served per logged-in hour and
    minutes between customers over all its staff members."""
    served = sum(r["served"] for r in rows)
    hours = sum(r["hours"] for r in rows)
    return {
        "served": served,
        "hours": round(hours, 2),
        "per_hour": round(served / hours, 2) if hours > 0 else None,
        "minutes_between": round(hours * 60 / served, 1) if served and hours > 0 else None,
    }
