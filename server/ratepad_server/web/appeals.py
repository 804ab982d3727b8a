"""Appeals in the web: a staff member disputes one of their own ratings (at or below the
branch's appeal level, within the appeal deadline); a manager reviews the queue (filters,
pages), sees the rating and the reason, and upholds (the rating leaves the KPIs, kept and
flagged) or rejects it with a note the staff member reads on their appeals page."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import BadRequest, PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from ..alerts.models import Appeal, Notification
from ..audit.log import record
from ..casework.policy import ancestors, appeal_window
from ..ingest.models import Rating
from ..org.models import Node, Role
from ..rollups.service import APPEAL_UPHELD, Deltas
from . import notes, paging
from .access import ACTORS, ALL, check_path, get_role, roles, user_of
from .casework import PAGE, node_choices, rating_facts

MAX_TEXT = 5000
SORTS = {  # ?sort= → the queue's order
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "staff": ("staff_id", "-created_at", "-id"),
}
SORT_LABELS = {
    "-created": gettext_lazy("newest first"),
    "created": gettext_lazy("oldest first"),
    "staff": gettext_lazy("by staff member"),
}


@roles(*ALL)
@require_http_methods(["GET", "POST"])
def appeals(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    if request.method == "POST":
        return _new_appeal(request, role)
    rows = Appeal.objects.select_related("branch", "reviewer").filter(
        branch__path__startswith=role.node.path)  # fmt: skip
    if role.role == Role.STAFF:  # their own, in their own branch
        staff = role.staff
        rows = rows.filter(staff_id=staff.staff_id if staff else "\x7f",
                           branch_id=staff.branch_id if staff else 0)  # fmt: skip
    g = request.GET
    filters = {k: g.get(k, "").strip()[:64] for k in ("state", "node", "staff", "since", "until")}
    if filters["state"]:
        if filters["state"] not in dict(Appeal.STATES):
            raise BadRequest(_("unknown state"))
        rows = rows.filter(state=filters["state"])
    if filters["node"]:
        node = Node.objects.filter(code=filters["node"]).first()
        if node is None or not role.node.contains(node):
            raise PermissionDenied(_("outside your part of the organisation"))
        rows = rows.filter(branch__path__startswith=node.path)
    if filters["staff"]:
        rows = rows.filter(staff_id=filters["staff"])
    rows = paging.between(rows, "created_at", filters["since"], filters["until"])
    sort = paging.choice(request, "sort", SORTS, "-created")
    page = Paginator(rows.order_by(*SORTS[sort]), PAGE).get_page(g.get("page"))
    facts = rating_facts([(a.serial, a.journal_seq, a.rating_time) for a in page])
    query = urlencode([*((k, v) for k, v in filters.items() if v),
                       *([("sort", sort)] if sort != "-created" else [])])  # fmt: skip
    return render(request, "web/appeals.html", {
        "page": page, "items": [(a, facts.get((a.serial, a.journal_seq))) for a in page],
        "filters": filters, "query": query, "states": Appeal.STATES, "sort": sort,
        "sort_labels": SORT_LABELS,
        "nodes": node_choices(role) if role.role != Role.STAFF else [],
    })  # fmt: skip


def _new_appeal(request: HttpRequest, role: Role) -> HttpResponse:
    if role.role != Role.STAFF or role.staff is None:
        raise PermissionDenied(_("only a staff member appeals their own ratings"))
    try:
        serial, seq = request.POST["serial"], int(request.POST["journal_seq"])
    except (KeyError, ValueError):
        raise BadRequest(_("which rating: its keypad and number")) from None
    reason = request.POST.get("reason", "").strip()[:MAX_TEXT]
    if not reason:
        raise BadRequest(_("Give a reason."))
    rating = Rating.objects.filter(serial=serial, journal_seq=seq, window__isnull=False).first()
    branch = Node.objects.filter(pk=rating.branch_id or 0).first() if rating else None
    # their own rating in their own branch: a rating of another branch carrying the same
    # staff id (ids are only unique within a branch's roster) is not theirs; one answer for
    # all three so that it does not tell which ratings exist
    if (
        rating is None
        or branch is None
        or rating.staff_id != role.staff.staff_id
        or branch.pk != role.staff.branch_id
        or not role.node.contains(branch)
    ):
        raise Http404(_("no such rating of yours"))
    window = appeal_window(branch)
    if rating.score > window.level:
        raise BadRequest(_("Only ratings of %(level)d or less can be appealed.")
                         % {"level": window.level})  # fmt: skip
    if not window.allows(rating.score, rating.time, rating.received_at):
        deadline = window.deadline(rating.time, rating.received_at)
        raise BadRequest(_("The appeal deadline of this rating was %(date)s.")
                         % {"date": deadline.isoformat()})  # fmt: skip
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(
                serial=serial,
                journal_seq=seq,
                rating_time=rating.time,
                staff_id=rating.staff_id,
                branch=branch,
                reason=reason,
                created_by=user_of(request),
            )
    except IntegrityError:
        raise BadRequest(_("This rating has been appealed already.")) from None
    reviewers = Role.objects.filter(role__in=ACTORS, node__path__in=ancestors(branch))
    Notification.objects.bulk_create([
        Notification(user_id=u, appeal=appeal,
                     text=notes.appeal_filed(rating.staff_id, serial, seq, rating.score))
        for u in reviewers.values_list("user_id", flat=True)
    ])  # fmt: skip
    record(request, "appeal.create", appeal, node_path=branch.path, serial=serial, seq=seq)
    return HttpResponseRedirect(reverse("web:appeals"))


@roles(*ACTORS)
@require_POST
def appeal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = Appeal.objects.select_related("branch").filter(pk=pk).first()
    if appeal is None:  # refused like another subtree's: the answer tells nothing
        raise PermissionDenied(_("outside your part of the organisation"))
    check_path(request, appeal.branch.path)
    decision = request.POST.get("decision", "")
    if decision not in (Appeal.UPHELD, Appeal.REJECTED):
        raise BadRequest(_("decide: uphold or reject"))
    note = request.POST.get("note", "").strip()[:MAX_TEXT]
    with transaction.atomic():
        changed = Appeal.objects.filter(pk=pk, state=Appeal.PENDING).update(
            state=decision, reviewer=user_of(request), decided_at=timezone.now(), decision_note=note
        )
        if changed != 1:
            raise BadRequest(_("This appeal has been decided already."))
        if decision == Appeal.UPHELD:
            _exclude(appeal.serial, appeal.journal_seq, appeal.rating_time)
    if appeal.created_by_id:
        Notification.objects.create(
            user_id=appeal.created_by_id,
            appeal=appeal,
            text=notes.appeal_decided(
                decision == Appeal.UPHELD, appeal.serial, appeal.journal_seq, note
            ),
        )
    record(request, f"appeal.{decision}", appeal, node_path=appeal.branch.path, note=note)
    back = request.POST.get("back", "")
    return HttpResponseRedirect(reverse("web:appeals") + (f"?{back}" if _safe_query(back) else ""))


def _safe_query(text: str) -> bool:
    """A query string of the queue's own filters (sent back to the same page after a decision)."""
    return len(text) < 500 and all(c.isalnum() or c in "=&-_%." for c in text)


def _exclude(serial: str, seq: int, when: datetime) -> None:
    """An upheld appeal: the rating is kept and flagged, and leaves the KPIs (its rollup row
    loses it, ``n_all`` still counts it)."""
    r = Rating.objects.filter(serial=serial, journal_seq=seq, time=when).first()
    if r is None or r.window_id is None or r.flags & APPEAL_UPHELD:
        return
    Rating.objects.filter(id=r.id, time=r.time).update(flags=r.flags | APPEAL_UPHELD)
    deltas = Deltas()
    deltas.add_rating(
        r.time,
        r.window_id,
        r.branch_id or 0,
        r.staff_id,
        r.score,
        r.key_count,
        r.level_value,
        r.flags,
        exclude=True,
    )
    deltas.write()


__all__: list[Any] = []
