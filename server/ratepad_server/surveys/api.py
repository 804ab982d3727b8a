"""Surveys and return visits in the JSON API (``/api/v1/surveys/...``): the stored report of a
node's survey for a period, the return visits of a subtree with their counts per node, and
recording a return visit. Readers of the node's subtree read; managers and admins record."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from django.core.exceptions import ValidationError as ModelInvalid
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from ..org.access import AccessDenied, node_in_scope, require_role
from ..org.models import Role
from ..reports.service import TZ
from ..web.period import OutOfRange, check_date, check_time
from . import service
from .models import ReturnVisit

router = Router(tags=["surveys"])
READERS = (Role.ADMIN, Role.MANAGER, Role.VIEWER)
ACTORS = (Role.ADMIN, Role.MANAGER)


class Failure(Schema):
    detail: str


DENIED: dict[int | str, Any] = {400: Failure, 403: Failure, 404: Failure}


def _role(request: HttpRequest, *allowed: str) -> Role:
    role = getattr(request, "auth", None)
    if not isinstance(role, Role):
        raise AccessDenied("this call needs a user's token")
    require_role(role, *allowed)
    return role


class SpanQuery(Schema):
    node: str | None = Field(default=None, max_length=64)
    since: date | None = Field(default=None, description="first day (default: 30 days ago)")
    until: date | None = Field(default=None, description="last day (default: today)")


def _span(q: SpanQuery) -> tuple[date, date]:
    try:  # the bounds of every date the server takes (web.period)
        last = check_date(q.until, "until") if q.until else datetime.now(TZ).date()
        first = check_date(q.since, "since") if q.since else last - timedelta(days=29)
    except OutOfRange as exc:
        raise HttpError(400, str(exc)) from None
    if first > last or (last - first).days > 3660:
        raise HttpError(400, "since..until: at most ten years, since not after until")
    return first, last


class SurveyReportOut(Schema):
    node: str
    first: date
    last: date
    respondents: int
    report: dict[str, Any] = Field(description="every figure with n, ci and small (n < min_n)")


@router.get("/report", response={200: SurveyReportOut, **DENIED})
def survey_report(request: HttpRequest, q: Query[SpanQuery]) -> dict[str, Any]:
    """The latest survey of the node whose period ends between since and until."""
    node = node_in_scope(_role(request, *READERS), q.node)
    s = service.survey_in(node, *_span(q))
    if s is None:
        raise HttpError(404, "no survey of this node in this period")
    return {"node": node.code, "first": s.first, "last": s.last, "respondents": s.respondents,
            "report": s.report}  # fmt: skip


class VisitOut(Schema):
    id: int
    branch: str
    contacted_at: datetime
    since: datetime
    due_at: datetime
    on_time: bool
    channel: str
    outcome: str
    satisfaction_after: int | None
    serial: str
    journal_seq: int | None
    score: int | None
    alert: int | None
    contacted_by: str | None
    note: str


class VisitCounts(Schema):
    code: str
    name: str
    visits: int
    on_time: int
    on_time_rate: float | None
    reached: int
    satisfaction_n: int
    satisfaction_mean: float | None


class VisitsOut(Schema):
    counts: list[VisitCounts]
    visits: list[VisitOut]


def _visit(v: ReturnVisit) -> dict[str, Any]:
    return {"id": v.pk, "branch": v.branch.code, "contacted_at": v.contacted_at,
            "since": v.since, "due_at": v.due_at, "on_time": v.on_time, "channel": v.channel,
            "outcome": v.outcome, "satisfaction_after": v.satisfaction_after,
            "serial": v.serial, "journal_seq": v.journal_seq, "score": v.score,
            "alert": v.alert_id, "contacted_by": v.contacted_by.username if v.contacted_by
            else None, "note": v.note}  # fmt: skip


@router.get("/returnvisits", response={200: VisitsOut, **DENIED})
def return_visits(request: HttpRequest, q: Query[SpanQuery]) -> dict[str, Any]:
    """Return visits made in the period in the node's subtree (newest first, at most 2000) and
    per branch: visits, on time, the on-time rate, reached, satisfaction after."""
    node = node_in_scope(_role(request, *READERS), q.node)
    first, last = _span(q)
    since = datetime.combine(first, time(), TZ)
    until = datetime.combine(last + timedelta(days=1), time(), TZ)
    visits = list(service.visits_of(node.path, since, until)[:2000])
    return {"counts": service.visit_counts(visits), "visits": [_visit(v) for v in visits]}


class VisitIn(Schema):
    alert: int | None = Field(default=None, description="the alert followed up")
    serial: str = Field(default="", max_length=64, description="or the rating's keypad")
    journal_seq: int | None = Field(default=None, description="and its journal number")
    contacted_at: datetime
    channel: Literal["phone", "sms", "message", "visit", "email", "other"]
    outcome: Literal["reached", "resolved", "no_answer", "declined"]
    satisfaction_after: int | None = Field(default=None, ge=1, le=5)
    note: str = Field(default="", max_length=1000, description="no customer personal data")


@router.post("/returnvisits", response={201: VisitOut, **DENIED})
def record_visit(request: HttpRequest, body: VisitIn) -> tuple[int, dict[str, Any]]:
    """Record a return visit after a rating or an alert of the caller's subtree."""
    role = _role(request, *ACTORS)
    try:
        origin = service.origin_of(role.node, alert=body.alert, serial=body.serial,
                                   seq=body.journal_seq)  # fmt: skip
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
    try:
        contacted = check_time(body.contacted_at, "contacted_at")
    except OutOfRange as exc:
        raise HttpError(400, str(exc)) from None
    visit = ReturnVisit(contacted_at=contacted, channel=body.channel, outcome=body.outcome,
                        satisfaction_after=body.satisfaction_after, note=body.note)  # fmt: skip
    try:
        service.record_visit(origin, visit, role.user)
    except ModelInvalid as exc:
        raise HttpError(400, "; ".join(exc.messages)) from None
    return 201, _visit(visit)
