"""The home page: an overview of the caller's part of the organisation.

For a reader (admin, manager, viewer): KPI cards for today, this week and this month, each with
its 环比 and 同比 (the periods of ``web.period``'s presets, tested by ``reports.compare``) and a
30-day trend; and what needs attention: the windows and staff members significantly below their
branch this week or month (``reports.below_parent``: the branch report's funnel outliers),
overdue alerts and cases, offline keypads, appeals waiting for a decision — each a link to where
it is dealt with (a viewer, who may not act, sees the entries without the action links).

For a staff member: the same cards of their own ratings, their latest ratings, and which of them
they may still appeal (the branch's appeal level and deadline), linked to the ratings list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from ..alerts.models import ACKNOWLEDGED, OPEN, Alert, Appeal
from ..casework.models import CLOSED, Case
from ..casework.policy import appeal_window
from ..dbrouter import reads_from_replica
from ..ingest.models import Device, Rating
from ..org.models import Node, Role, Window
from ..reports import service as reports
from . import surveys
from .access import ACTORS, ALL, get_role, roles
from .period import DEFAULT, PRESETS, Period, today
from .views import _flags, _window_state

CARDS = ("today", "this_week", "this_month")  # the presets the cards show
ATTENTION_PERIODS = ("this_week", "this_month")  # the presets the attention list looks at
LATE_DAYS = 7  # how late an upload may be and still be looked at for appeals
LISTED = 10  # entries of each kind listed on the page (the count says how many in all)


def _preset(name: str, day: date) -> Period:
    return Period(*PRESETS[name][2](day), preset=name)


def _change(row: dict[str, Any]) -> dict[str, Any]:
    """A comparison row of ``reports.compare`` as its arrow: up, down or flat, and whether the
    two-proportion test calls it significant."""
    test = row["test"]
    if test is None:
        return {**row, "arrow": None, "significant": False}
    arrow = "up" if test["diff"] > 0 else "down" if test["diff"] < 0 else "flat"
    return {**row, "arrow": arrow, "significant": test["p"] < reports.SIGNIFICANT_P}


def cards(node: Node, staff_id: str | None, day: date) -> list[dict[str, Any]]:
    out = []
    for name in CARDS:
        period = _preset(name, day)
        scope = reports.Scope(node, period.since, period.until, staff_id=staff_id)
        cell = reports.total(scope)
        compare = reports.compare(scope, cell, *period.comparison_spans())
        out.append({
            "preset": name, "period": period, "stats": cell.stats(),
            "changes": [(key, _change(compare[key])) for key in ("previous", "last_year")],
        })  # fmt: skip
    return out


def trend(node: Node, staff_id: str | None, day: date) -> list[dict[str, Any]]:
    """n, index and CSAT per day of the last 30 days (the report's daily series)."""
    period = _preset(DEFAULT, day)
    scope = reports.Scope(node, period.since, period.until, staff_id=staff_id)
    rated = {s["day"]: s for s in reports.heatmap_and_flow(scope)["series"]}
    days = [(period.first + timedelta(days=i)).isoformat()
            for i in range((period.last - period.first).days + 1)]  # fmt: skip
    # every day on the axis: a day without ratings is a gap, not skipped
    return [rated.get(d, {"day": d, "n": 0, "index": None, "csat": None}) for d in days]


def below(node: Node, day: date) -> list[dict[str, Any]]:
    """Windows and staff members significantly below their branch this week or this month
    (each once, with the first period it shows in)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for name in ATTENTION_PERIODS:
        period = _preset(name, day)
        for row in reports.below_parent(reports.Scope(node, period.since, period.until)):
            key = (row["kind"], row["code"])
            if key not in seen:
                seen.add(key)
                out.append({**row, "period": period})
    return out


def attention(node: Node, day: date, now: datetime) -> dict[str, Any]:
    subtree = Q(branch__path__startswith=node.path)
    alerts = Alert.objects.filter(subtree, state__in=(OPEN, ACKNOWLEDGED), deadline__lt=day,
                                  digest=False).select_related("branch")  # fmt: skip
    cases = (Case.objects.filter(subtree, deadline__lt=day).exclude(state=CLOSED)
             .select_related("branch", "window"))  # fmt: skip
    appeals = Appeal.objects.filter(subtree, state=Appeal.PENDING).select_related("branch")
    devices = Device.objects.filter(branch_id__in=Node.objects.filter(path__startswith=node.path)
                                    .values("pk")).select_related("agent")  # fmt: skip
    offline = [d for d in devices if _window_state(d, now) == "offline"]
    windows = {w.pk: w for w in node_windows(node, {d.window_id for d in offline})}
    return {
        "below": below(node, day),
        "alerts": list(alerts.order_by("deadline", "id")[:LISTED]), "alerts_n": alerts.count(),
        "cases": list(cases.order_by("deadline", "id")[:LISTED]), "cases_n": cases.count(),
        "appeals": list(appeals.order_by("created_at", "id")[:LISTED]),
        "appeals_n": appeals.count(),
        "offline": [{"device": d, "window": windows.get(d.window_id or 0)}
                    for d in sorted(offline, key=lambda d: d.serial)[:LISTED]],
        "offline_n": len(offline),
    }  # fmt: skip


def node_windows(node: Node, pks: set[int | None]) -> list[Any]:
    wanted = [p for p in pks if p]
    return list(Window.objects.filter(pk__in=wanted, branch__path__startswith=node.path)
                .select_related("branch"))  # fmt: skip


def appealable(role: Role, day: date) -> dict[str, Any]:
    """What a staff member may still appeal (``appeal_window``: at or below the branch's appeal
    level, rated or received within the deadline, not yet appealed) and the ratings list
    filtered to those scores and dates."""
    staff = role.staff
    assert staff is not None
    window = appeal_window(role.node, day)
    scores = list(range(1, window.level + 1))
    # a rating received within the deadline counts even if rated earlier: a margin of days
    since = reports.midnight(window.since) - timedelta(days=LATE_DAYS)
    mine = Rating.objects.filter(branch_id=staff.branch_id, staff_id=staff.staff_id,
                                 time__gte=since, score__in=scores)  # fmt: skip
    appealed = set(Appeal.objects.filter(staff_id=staff.staff_id, branch_id=staff.branch_id)
                   .values_list("serial", "journal_seq"))  # fmt: skip
    n = sum(1 for r in mine.order_by("-time")[:1000]
            if window.allows(r.score, r.time, r.received_at)
            and (r.serial, r.journal_seq) not in appealed)  # fmt: skip
    query = urlencode([("since", window.since.isoformat()), ("until", day.isoformat()),
                       *[("score", str(s)) for s in scores]])  # fmt: skip
    return {"level": window.level, "since": window.since, "n": n, "query": query}


def latest(role: Role, day: date) -> list[dict[str, Any]]:
    staff_id = role.staff.staff_id if role.staff else "\x00"
    since = _preset(DEFAULT, day).since
    branch = role.staff.branch_id if role.staff else 0
    rows = Rating.objects.filter(branch_id=branch, staff_id=staff_id, time__gte=since)
    return [{"time": r.time, "score": r.score, "flags": _flags(r.flags)}
            for r in rows.order_by("-time")[:LISTED]]  # fmt: skip


@roles(*ALL)
@require_GET
@reads_from_replica
def home(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    day, now = today(), timezone.now()
    staff_id = None
    if role.role == Role.STAFF:
        if role.staff is None:
            raise PermissionDenied(_("this account has no staff member"))
        staff_id = role.staff.staff_id
    context: dict[str, Any] = {
        "node": role.node, "staff_id": staff_id, "cards": cards(role.node, staff_id, day),
        "min_n": reports.MIN_N, "can_act": role.role in ACTORS,
        "chart": {"series": trend(role.node, staff_id, day)},
    }  # fmt: skip
    if staff_id is None:
        context["attention"] = attention(role.node, day, now)
        # this month's questionnaire beside the keypads' cards, never mixed into them
        month = Period(*PRESETS["this_month"][2](day), preset="this_month")
        context["survey_period"] = month
        context["survey"] = surveys.survey_context(
            role.node, month.first, month.last, month.previous(), month.year_before()
        )
    else:
        context["appealable"] = appealable(role, day)
        context["latest"] = latest(role, day)
    return render(request, "web/overview.html", context)
