"""Reading the collected data: ratings, summaries, the tree, devices, quarantine, live."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from ratepad import flags as rating_flags

from ..dbrouter import replica_reads
from ..ingest import service as ingest
from ..ingest.models import Conflict, Device, Quarantine, Rating
from ..live.feed import Style
from ..live.stream import open_stream
from ..org.access import AccessDenied, NotFound, node_in_scope, require_role, staff_filter
from ..org.models import Node, Role, Window
from ..reports import service as reports
from ..web.period import OutOfRange, check_time
from .schemas import (
    AssignIn,
    AssignOut,
    DevicesOut,
    Error,
    NodesOut,
    QuarantineOut,
    RatingsOut,
    SummaryOut,
)

router = Router()
READERS = (Role.ADMIN, Role.MANAGER, Role.VIEWER, Role.STAFF)
DENIED: dict[int | str, Any] = {403: Error, 404: Error}


def _role(request: HttpRequest) -> Role:
    role = getattr(request, "auth", None)  # set by ninja's auth
    if not isinstance(role, Role):
        raise AccessDenied("this call needs a user's token")
    return role


def _utc(when: datetime | None, name: str) -> datetime | None:
    """A query's time, aware (a naive one is UTC), within the dates a URL may name: else 400
    with the reason (a time such as 9999-12-31 overflows the reports' arithmetic)."""
    if when is None:
        return None
    try:
        return check_time(when, name)
    except OutOfRange as exc:
        raise HttpError(400, str(exc)) from None


class Span(Schema):
    node: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None


class RatingsQuery(Span):
    limit: int = Field(default=1000, ge=1, le=10_000)
    after: int = Field(default=0, ge=0, description="only ratings with a larger id (paging)")


@router.get("/ratings", response={200: RatingsOut, 400: Error, **DENIED}, tags=["ratings"])
def ratings(request: HttpRequest, q: Query[RatingsQuery]) -> dict[str, Any]:
    """Ratings in the node's subtree (a staff user: their own), oldest first."""
    role = _role(request)
    require_role(role, *READERS)
    node = node_in_scope(role, q.node)
    rows = Rating.objects.filter(branch__path__startswith=node.path, id__gt=q.after)
    since, until = _utc(q.since, "since"), _utc(q.until, "until")
    if since is not None:
        rows = rows.filter(time__gte=since)
    if until is not None:
        rows = rows.filter(time__lt=until)
    staff = staff_filter(role)
    if staff is not None:
        rows = rows.filter(staff_id=staff, window__isnull=False)
    rows = rows.select_related("window", "branch").order_by("time", "id")[: q.limit]
    return {"ratings": [_rating(r) for r in rows]}


def _rating(r: Rating) -> dict[str, Any]:
    return {
        "id": r.id,
        "serial": r.serial,
        "journal_seq": r.journal_seq,
        "time": r.time,
        "time_exact": r.time_exact,
        "score": r.score,
        "key_count": r.key_count,
        "level_value": r.level_value,
        "staff_id": r.staff_id,
        "window": r.window.code if r.window else None,
        "branch": r.branch.code if r.branch else None,
        "prompted": not r.flags & rating_flags.RatingFlags.UNPROMPTED,
        "flags": rating_flags.names(r.flags),
        "received_at": r.received_at,
    }


@router.get("/summary", response={200: SummaryOut, 400: Error, **DENIED}, tags=["ratings"])
def summary(request: HttpRequest, q: Query[Span]) -> dict[str, Any]:
    """Counts, satisfaction index, CSAT with its Wilson interval and the response rate of the
    node's subtree, from the hourly rollups (hours starting in [since, until))."""
    role = _role(request)
    require_role(role, *READERS)
    node = node_in_scope(role, q.node)
    since, until = _utc(q.since, "since"), _utc(q.until, "until")
    with replica_reads(request):
        return reports.summary(node, since, until, staff_filter(role))


class NodeQuery(Schema):
    node: str | None = Field(default=None, max_length=64)


@router.get("/nodes", response={200: NodesOut, **DENIED}, tags=["organisation"])
def nodes(request: HttpRequest, q: Query[NodeQuery]) -> dict[str, Any]:
    """The organisation tree below (and including) the node."""
    role = _role(request)
    require_role(role, *READERS)
    node = node_in_scope(role, q.node)
    rows = Node.objects.filter(path__startswith=node.path).select_related("parent")
    return {
        "nodes": [
            {
                "code": n.code,
                "name": n.name,
                "kind": n.kind,
                "path": n.path,
                "parent": n.parent.code if n.parent else None,
            }
            for n in rows
        ]
    }


@router.get("/devices", response={200: DevicesOut, **DENIED}, tags=["organisation"])
def devices(request: HttpRequest, q: Query[NodeQuery]) -> dict[str, Any]:
    """The latest state of every keypad in the subtree."""
    role = _role(request)
    require_role(role, Role.ADMIN, Role.MANAGER, Role.VIEWER)
    node = node_in_scope(role, q.node)
    rows = (
        Device.objects.filter(branch__path__startswith=node.path)
        .select_related("branch", "window")
        .order_by("serial")
    )
    return {
        "devices": [
            {
                "serial": d.serial,
                "branch": d.branch.code if d.branch else None,
                "window": d.window.code if d.window else None,
                "connected": d.connected,
                "firmware": d.firmware,
                "state": d.state,
                "faults": d.faults.split(),
                "unacked": d.unacked,
                "staff_id": d.staff_id,
                "updated_at": d.updated_at,
            }
            for d in rows
        ]
    }


@router.get("/quarantine", response={200: QuarantineOut, **DENIED}, tags=["quarantine"])
def quarantine(request: HttpRequest, q: Query[NodeQuery]) -> dict[str, Any]:
    """Ratings an agent uploaded that are not stored (keypad bound to none or to another
    branch's window at the rating's time, or a time outside the accepted span), kept in the
    uploading branch's quarantine, not yet assigned."""
    role = _role(request)
    require_role(role, Role.ADMIN, Role.MANAGER)
    node = node_in_scope(role, q.node)
    rows = (
        Quarantine.objects.filter(
            branch__path__startswith=node.path, kind="rating", assigned_at=None
        )
        .select_related("branch")
        .order_by("id")[:10_000]
    )
    return {
        "quarantine": [
            {
                "serial": r.serial,
                "journal_seq": r.journal_seq,
                "time": r.time,
                "reason": r.reason,
                "branch": r.branch.code if r.branch else None,
                "created_at": r.created_at,
            }
            for r in rows
        ]
    }


@router.post(
    "/quarantine/assign", response={200: AssignOut, 409: Error, **DENIED}, tags=["quarantine"]
)
def assign(request: HttpRequest, body: AssignIn) -> Any:
    """Store a quarantined rating in a window (both in the admin's subtree); it then counts.
    409 if it cannot be stored: its (serial, journal_seq) is stored already (then this copy
    is a duplicate, or listed in ``/conflicts`` if it differs) or its time is out of range."""
    role = _role(request)
    require_role(role, Role.ADMIN)
    window = Window.objects.select_related("branch").filter(code=body.window).first()
    if window is None or not role.node.contains(window.branch):
        # an unknown window is refused like another subtree's: no oracle of window codes
        raise AccessDenied(
            _("window %(code)s is outside your part of the organisation") % {"code": body.window}
        )
    scope = node_in_scope(role, None)
    with transaction.atomic():
        item = (
            Quarantine.objects.select_for_update()
            .select_related("branch")
            .filter(serial=body.serial, journal_seq=body.journal_seq, kind="rating",
                    assigned_at=None, branch__path__startswith=scope.path)
            .order_by("id")
            .first()
        )  # fmt: skip
        if item is None:
            raise NotFound("no such rating in quarantine")
        node_in_scope(role, item.branch.code)
        try:
            outcome = ingest.assign_quarantined(item, window)
        except ingest.CannotAssign as exc:
            return 409, {"detail": f"cannot store this rating: {exc}"}
    if outcome != "stored":
        return 409, {"detail": f"({body.serial}, {body.journal_seq}) is stored already: "
                     + ("same content, nothing to add" if outcome == "duplicate"
                        else "this differing copy is listed in /api/v1/conflicts")}  # fmt: skip
    return {"assigned": True}


class ConflictOut(Schema):
    serial: str
    journal_seq: int
    branch: str | None  # the uploading agent's
    received_at: datetime
    differs: list[str]  # the fields in which the two versions differ
    rating: dict[str, Any]  # this version, as uploaded
    stored: dict[str, Any] | None  # the stored version (its content fields)


class ConflictsOut(Schema):
    conflicts: list[ConflictOut]


@router.get("/conflicts", response={200: ConflictsOut, **DENIED}, tags=["quarantine"])
def conflicts(request: HttpRequest, q: Query[NodeQuery]) -> dict[str, Any]:
    """Ratings resent under a stored (serial, journal_seq) with other content, by agents of
    the subtree (newest first): the stored rating was left as it is, this version kept."""
    role = _role(request)
    require_role(role, Role.ADMIN)
    node = node_in_scope(role, q.node)
    rows = list(
        Conflict.objects.filter(branch__path__startswith=node.path)
        .select_related("branch")
        .order_by("-id")[:1000]
    )
    stored = {
        (r["serial"], r["journal_seq"]): r
        for r in Rating.objects.filter(
            serial__in={c.serial for c in rows}, journal_seq__in={c.journal_seq for c in rows}
        ).values("serial", "journal_seq", *ingest.CONTENT)
    }
    return {
        "conflicts": [
            {
                "serial": c.serial,
                "journal_seq": c.journal_seq,
                "branch": c.branch.code if c.branch else None,
                "received_at": c.received_at,
                "differs": c.differs.split(","),
                "rating": c.item,
                "stored": stored.get((c.serial, c.journal_seq)),
            }
            for c in rows
        ]
    }


class LiveQuery(NodeQuery):
    seconds: float = Field(default=3600, gt=0, le=86_400, description="close after this long")


@router.get("/live", response={200: None, 429: Error, **DENIED}, tags=["live"])
def live(request: HttpRequest, q: Query[LiveQuery]) -> HttpResponseBase:
    """Server-sent events: new ratings and device states in the subtree, as they commit on
    any server instance. 429 when the caller (or the server) has its limit of streams open."""
    role = _role(request)
    require_role(role, Role.ADMIN, Role.MANAGER, Role.VIEWER)
    node = node_in_scope(role, q.node)
    return open_stream(user=role.user_id, node=node, seconds=q.seconds,
                       kinds=("rating", "device"), style=Style())  # fmt: skip


__all__ = ["AccessDenied", "router"]
