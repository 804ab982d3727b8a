"""The loop in the JSON API: ``GET /api/v1/loop/report?node=CODE&month=YYYY-MM`` (the monthly
loop report) and ``GET /api/v1/loop/cases`` (the cases of a subtree, newest first, paged by
id). Managers, admins and viewers of the node's subtree."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from ..org.access import AccessDenied, node_in_scope, require_role
from ..org.models import Role
from .models import CLOSED, Case
from .policy import local_date
from .service import loop_report

router = Router(tags=["loop"])
READERS = (Role.ADMIN, Role.MANAGER, Role.VIEWER)


class Failure(Schema):
    detail: str


DENIED: dict[int | str, Any] = {400: Failure, 403: Failure}


class LoopCounts(Schema):
    code: str
    name: str
    opened: int
    closed: int
    on_time: int = Field(description="closed by the deadline")
    overdue: int = Field(description="open and past the deadline")
    escalated: int
    not_genuine: int
    on_time_rate: float | None = Field(
        description="on_time / (closed + overdue); null when both are 0"
    )


class LoopReportOut(Schema):
    node: str
    name: str
    month: str
    total: LoopCounts
    rows: list[LoopCounts] = Field(description="per child node (a branch: per window)")


class ReportQuery(Schema):
    node: str | None = Field(default=None, max_length=64)
    month: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")


def _role(request: HttpRequest) -> Role:
    role = getattr(request, "auth", None)
    if not isinstance(role, Role):
        raise AccessDenied("this call needs a user's token")
    require_role(role, *READERS)
    return role


def _month(text: str | None) -> date:
    if text is None:
        return local_date(timezone.now()).replace(day=1)
    try:
        first = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise HttpError(400, "month: YYYY-MM") from None
    if not 2000 <= first.year <= 2099:
        raise HttpError(400, "month: 2000-01 to 2099-12")
    return first


@router.get("/report", response={200: LoopReportOut, **DENIED})
def report(request: HttpRequest, q: Query[ReportQuery]) -> dict[str, Any]:
    """The cases opened in the month (default: this month) in the node's subtree."""
    role = _role(request)
    return loop_report(node_in_scope(role, q.node), _month(q.month))


class CaseOut(Schema):
    id: int
    serial: str
    journal_seq: int
    rating_time: datetime
    score: int
    staff_id: str
    window: str
    branch: str
    state: str
    genuine: bool | None
    opened_at: datetime
    deadline: date
    closed_at: datetime | None
    on_time: bool | None
    escalated_to: str | None
    alert: int | None


class CasesOut(Schema):
    cases: list[CaseOut]


class CasesQuery(Schema):
    node: str | None = Field(default=None, max_length=64)
    open: bool | None = Field(default=None, description="only open (true) or closed (false)")
    limit: int = Field(default=500, ge=1, le=5000)
    before: int | None = Field(default=None, ge=1, description="only cases with a smaller id")


@router.get("/cases", response={200: CasesOut, **DENIED})
def cases(request: HttpRequest, q: Query[CasesQuery]) -> dict[str, Any]:
    """The node's cases, newest first; page with ``before`` = the last id of a page."""
    node = node_in_scope(_role(request), q.node)
    rows = Case.objects.select_related("window", "branch", "escalated_to").filter(
        branch__path__startswith=node.path)  # fmt: skip
    if q.open is not None:
        rows = rows.exclude(state=CLOSED) if q.open else rows.filter(state=CLOSED)
    if q.before is not None:
        rows = rows.filter(id__lt=q.before)
    return {"cases": [{
        "id": c.pk, "serial": c.serial, "journal_seq": c.journal_seq,
        "rating_time": c.rating_time, "score": c.score, "staff_id": c.staff_id,
        "window": c.window.code, "branch": c.branch.code, "state": c.state,
        "genuine": c.genuine, "opened_at": c.opened_at, "deadline": c.deadline,
        "closed_at": c.closed_at, "on_time": c.on_time,
        "escalated_to": c.escalated_to.code if c.escalated_to else None, "alert": c.alert_id,
    } for c in rows.order_by("-id")[: q.limit]]}  # fmt: skip
