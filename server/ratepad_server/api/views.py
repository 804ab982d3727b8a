"""Reading the collected data: ratings, summaries, the tree, devices, quarantine, live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from ratepad import flags as rating_flags

from ..ingest.models import Device, Quarantine, Rating
from ..live.feed import feed
from ..org.access import AccessDenied, NotFound, node_in_scope, require_role, staff_filter
from ..org.models import Node, Role, Window
from ..reports import service as reports
from ..rollups import service as rollups
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


def _utc(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


class Span(Schema):
    node: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None


class RatingsQuery(Span):
    limit: int = Field(default=1000, ge=1, le=10_000)
    after: int = Field(default=0, ge=0, description="only ratings with a larger id (paging)")


@router.get("/ratings", response={200: RatingsOut, **DENIED}, tags=["ratings"])
def ratings(request: HttpRequest, q: Query[RatingsQuery]) -> dict[str, Any]:
    """Ratings in the node's subtree (a staff user: their own), oldest first."""
    role = _role(request)
    require_role(role, *READERS)
    node = node_in_scope(role, q.node)
    rows = Rating.objects.filter(branch__path__startswith=node.path, id__gt=q.after)
    since, until = _utc(q.since), _utc(q.until)
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


@router.get("/summary", response={200: SummaryOut, **DENIED}, tags=["ratings"])
def summary(request: HttpRequest, q: Query[Span]) -> dict[str, Any]:
    """Counts, satisfaction index, CSAT with its Wilson interval and the response rate of the
    node's subtree, from the hourly rollups (hours starting in [since, until))."""
    role = _role(request)
    require_role(role, *READERS)
    node = node_in_scope(role, q.node)
    return reports.summary(node, _utc(q.since), _utc(q.until), staff_filter(role))


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
    """Ratings kept without a window (keypad bound to none, or not to the uploading
    agent's branch), not yet assigned."""
    role = _role(request)
    require_role(role, Role.ADMIN, Role.MANAGER)
    node = node_in_scope(role, q.node)
    rows = (
        Quarantine.objects.filter(branch__path__startswith=node.path, assigned_at=None)
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


@router.post("/quarantine/assign", response={200: AssignOut, **DENIED}, tags=["quarantine"])
def assign(request: HttpRequest, body: AssignIn) -> dict[str, Any]:
    """Give a quarantined rating its window (both in the admin's subtree); it then counts."""
    role = _role(request)
    require_role(role, Role.ADMIN)
    window = Window.objects.select_related("branch").filter(code=body.window).first()
    if window is None:
        raise NotFound(f"no window {body.window!r}")
    node_in_scope(role, window.branch.code)
    with transaction.atomic():
        item = (
            Quarantine.objects.select_for_update()
            .select_related("branch")
            .filter(serial=body.serial, journal_seq=body.journal_seq, assigned_at=None)
            .first()
        )
        if item is None:
            raise NotFound("no such rating in quarantine")
        node_in_scope(role, item.branch.code)
        rating = Rating.objects.get(serial=item.serial, journal_seq=item.journal_seq)
        Rating.objects.filter(id=rating.id, time=rating.time).update(
            window_id=window.pk, branch_id=window.branch_id
        )
        deltas = rollups.Deltas()
        deltas.add_rating(
            rating.time,
            window.pk,
            window.branch_id,
            rating.staff_id,
            rating.score,
            rating.key_count,
            rating.level_value,
            rating.flags,
        )
        deltas.write()
        item.window, item.assigned_at = window, datetime.now(UTC)
        item.save(update_fields=["window", "assigned_at"])
    return {"assigned": True}


class LiveQuery(NodeQuery):
    seconds: float = Field(default=3600, gt=0, le=86_400, description="close after this long")


@router.get("/live", response={200: None, **DENIED}, tags=["live"])
def live(request: HttpRequest, q: Query[LiveQuery]) -> StreamingHttpResponse:
    """Server-sent events: new ratings and device states in the subtree, as they commit on
    any server instance."""
    role = _role(request)
    require_role(role, Role.ADMIN, Role.MANAGER, Role.VIEWER)
    node = node_in_scope(role, q.node)
    branches = {n.pk: n.code for n in Node.objects.filter(path__startswith=node.path)}
    sub = feed.subscribe()
    response = StreamingHttpResponse(
        _stream(sub, branches, q.seconds), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer the stream
    return response


def _stream(sub: Any, branches: dict[int, str], seconds: float) -> Iterator[bytes]:
    windows: dict[int, str] = {}
    deadline = time.monotonic() + seconds
    try:
        yield b": live\n\n"
        while time.monotonic() < deadline:
            event = sub.get(min(15.0, max(0.0, deadline - time.monotonic())))
            if event is None:
                yield b": keep-alive\n\n"
                continue
            rows = [r for r in event.get("rows", ()) if r.get("branch") in branches]
            for r in rows:
                r["branch"] = branches[r["branch"]]
                wid = r.get("window")
                if wid is not None:
                    if wid not in windows:
                        w = Window.objects.filter(pk=wid).first()
                        windows[wid] = w.code if w else str(wid)
                    r["window"] = windows[wid]
                kind = "rating" if event["kind"] == "ratings" else "device"
                yield f"event: {kind}\ndata: {json.dumps(r)}\n\n".encode()
    finally:
        sub.close()


__all__ = ["AccessDenied", "router"]
