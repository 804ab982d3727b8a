"""The closed loop in the web: alerts (acknowledge, assign, comment, resolve), alert rules,
appeals (a staff member disputes a rating; a manager upholds or rejects) and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    BadRequest,
    PermissionDenied,
    ValidationError,
)
from django.db import IntegrityError, transaction
from django.db.models import Field
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..alerts.engine import TransitionError, transition
from ..alerts.models import PARAMETERS as RULE_PARAMETERS
from ..alerts.models import Alert, Appeal, Comment, Notification, Rule
from ..audit.log import record
from ..ingest.models import Rating
from ..org.models import Node, Role
from ..rollups.service import APPEAL_UPHELD, Deltas
from .access import ACTORS, ADMINS, ALL, READERS, check_path, get_role, roles, scoped_node, user_of


def _alert(request: HttpRequest, pk: int) -> Alert:
    alert = Alert.objects.select_related("rule", "branch", "window", "assignee").filter(
        pk=pk).first()  # fmt: skip
    if alert is None:
        raise Http404("no such alert")
    check_path(request, alert.branch.path)
    return alert


@roles(*READERS)
@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    state = request.GET.get("state", "")
    rows = Alert.objects.select_related("branch", "window", "rule", "assignee").filter(
        branch__path__startswith=role.node.path)  # fmt: skip
    if state:
        rows = rows.filter(state=state)
    return render(request, "web/alerts.html", {"alerts": rows[:300], "state": state})


@roles(*READERS)
@require_GET
def alert(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    role = get_role(request)
    assignable = get_user_model().objects.filter(
        ratepad_role__role__in=ACTORS, ratepad_role__node__path__startswith=role.node.path
    ).order_by("username") if role.role in ACTORS else []  # fmt: skip
    return render(request, "web/alert.html", {
        "alert": a, "comments": a.comments.select_related("author"), "assignable": assignable,
        "overdue": a.state != "resolved" and a.deadline < timezone.now().date(),
    })  # fmt: skip


@roles(*ACTORS)
@require_POST
def alert_act(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    action = request.POST.get("action", "")
    note = request.POST.get("note", "").strip()[:5000]
    if action == "assign":
        username = request.POST.get("assignee", "")
        user = get_user_model().objects.filter(username=username).first()
        user_role = Role.objects.select_related("node").filter(user=user).first()
        if user is None or user_role is None or user_role.role not in ACTORS:
            raise BadRequest("assign to a manager or an admin")
        check_path(request, user_role.node.path)
        Alert.objects.filter(pk=a.pk).update(assignee=user)
        Notification.objects.create(user=user, alert=a, text=f"assigned: {a.summary}")
        record(request, "alert.assign", a, node_path=a.branch.path, assignee=username)
    elif action in ("acknowledge", "resolve"):
        if action == "resolve" and not note:
            raise BadRequest("say how it was resolved")
        try:
            transition(a, action, user_of(request), note)
        except TransitionError as exc:
            raise BadRequest(str(exc)) from None
        record(request, f"alert.{action}", a, node_path=a.branch.path, note=note)
    else:
        raise BadRequest("unknown action")
    if note and action != "resolve":
        Comment.objects.create(alert=a, author=user_of(request), text=note)
    return HttpResponseRedirect(reverse("web:alert", args=[a.pk]))


@roles(*ACTORS)
@require_POST
def alert_comment(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    text = request.POST.get("text", "").strip()[:5000]
    if not text:
        raise BadRequest("an empty comment")
    Comment.objects.create(alert=a, author=user_of(request), text=text)
    record(request, "alert.comment", a, node_path=a.branch.path)
    return HttpResponseRedirect(reverse("web:alert", args=[a.pk]))


# -- rules ---------------------------------------------------------------------------------------
@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    error = ""
    if request.method == "POST":
        p = request.POST
        try:
            node = scoped_node(request, p.get("node", "") or role.node.code)
            kind = p.get("kind", "")
            if kind not in dict(Rule.KINDS):
                raise ValueError("unknown kind")
            rule = Rule(
                node=node,
                name=p.get("name", "").strip()[:200] or kind,
                kind=kind,
                emails=p.get("emails", "").strip()[:1000],
                webhook=p.get("webhook", "").strip(),
                # as typed: the model's validators convert them and say what is wrong
                **{f: p.get(f, "").strip() or _rule_field(f).default for f in RULE_PARAMETERS},
            )  # fmt: skip
            rule.full_clean()
            rule.save()
            record(request, "rule.create", rule, node_path=node.path, kind=kind)
            return HttpResponseRedirect(reverse("web:rules"))
        except ValidationError as exc:
            error = _validation_message(exc)
        except ValueError as exc:
            error = str(exc)
    rows = Rule.objects.select_related("node").filter(node__path__startswith=role.node.path)
    return render(request, "web/rules.html", {"rules": rows, "kinds": Rule.KINDS,
                                              "error": error},
                  status=400 if error else 200)  # fmt: skip


def _rule_field(name: str) -> Field[Any, Any]:
    field = Rule._meta.get_field(name)
    if not isinstance(field, Field):  # the reverse side of a relation: not a rule's value
        raise ValueError(f"no field {name!r}")
    return field


def _validation_message(exc: ValidationError) -> str:
    """One line naming each refused field (in the page's language) and why."""
    parts = []
    for field, messages in exc.message_dict.items():
        text = " ".join(str(m) for m in messages)
        if field == NON_FIELD_ERRORS:
            parts.append(text)
        else:
            parts.append(f"{_rule_field(field).verbose_name}: {text}")
    return "; ".join(parts)


@roles(*ADMINS)
@require_POST
def rule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    rule = Rule.objects.select_related("node").filter(pk=pk).first()
    if rule is None:
        raise Http404("no such rule")
    check_path(request, rule.node.path)
    problems = rule.problems()
    if problems and not rule.active:  # switched off for bad parameters: it stays off
        raise BadRequest("this rule's parameters are out of bounds: " + "; ".join(problems))
    Rule.objects.filter(pk=pk).update(active=not rule.active)
    record(request, "rule.toggle", rule, node_path=rule.node.path, active=not rule.active)
    return HttpResponseRedirect(reverse("web:rules"))


# -- appeals -------------------------------------------------------------------------------------
@roles(*ALL)
@require_http_methods(["GET", "POST"])
def appeals(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    if request.method == "POST":
        return _new_appeal(request, role)
    rows = Appeal.objects.select_related("branch").filter(branch__path__startswith=role.node.path)
    if role.role == Role.STAFF:
        rows = rows.filter(staff_id=role.staff.staff_id if role.staff else "\x00")
    return render(request, "web/appeals.html", {"appeals": rows[:300]})


def _new_appeal(request: HttpRequest, role: Role) -> HttpResponse:
    if role.role != Role.STAFF or role.staff is None:
        raise PermissionDenied("only a staff member appeals their own ratings")
    try:
        serial, seq = request.POST["serial"], int(request.POST["journal_seq"])
    except (KeyError, ValueError):
        raise BadRequest("serial and journal_seq") from None
    reason = request.POST.get("reason", "").strip()[:5000]
    if not reason:
        raise BadRequest("give a reason")
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
        raise Http404("no such rating of yours")
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
        raise BadRequest("this rating has been appealed already") from None
    for user_id in Role.objects.filter(
        role__in=ACTORS, node__path__in=_ancestors(branch)
    ).values_list("user_id", flat=True):
        Notification.objects.create(
            user_id=user_id, appeal=appeal, text=f"appeal by {rating.staff_id}: {serial}#{seq}"
        )
    record(request, "appeal.create", appeal, node_path=branch.path, serial=serial, seq=seq)
    return HttpResponseRedirect(reverse("web:appeals"))


def _ancestors(node: Node) -> list[str]:
    return ["/".join(node.path.split("/")[: i + 1]) + "/" for i in range(1, node.path.count("/"))]


@roles(*ACTORS)
@require_POST
def appeal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = Appeal.objects.select_related("branch").filter(pk=pk).first()
    if appeal is None:  # refused like another subtree's: the answer tells nothing
        raise PermissionDenied("outside your part of the organisation")
    check_path(request, appeal.branch.path)
    decision = request.POST.get("decision", "")
    if decision not in (Appeal.UPHELD, Appeal.REJECTED):
        raise BadRequest("decision: upheld or rejected")
    note = request.POST.get("note", "").strip()[:5000]
    with transaction.atomic():
        changed = Appeal.objects.filter(pk=pk, state=Appeal.PENDING).update(
            state=decision, reviewer=user_of(request), decided_at=timezone.now(), decision_note=note
        )
        if changed != 1:
            raise BadRequest("decided already")
        if decision == Appeal.UPHELD:
            _exclude(appeal.serial, appeal.journal_seq, appeal.rating_time)
    if appeal.created_by_id:
        Notification.objects.create(
            user_id=appeal.created_by_id,
            appeal=appeal,
            text=f"appeal {appeal.serial}#{appeal.journal_seq}: {decision}",
        )
    record(request, f"appeal.{decision}", appeal, node_path=appeal.branch.path, note=note)
    return HttpResponseRedirect(reverse("web:appeals"))


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


# -- notifications -------------------------------------------------------------------------------
@roles(*ALL)
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    rows = Notification.objects.filter(user=user_of(request))[:200]
    return render(request, "web/notifications.html", {"notes": rows})


@roles(*ALL)
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    Notification.objects.filter(user=user_of(request), read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return HttpResponseRedirect(reverse("web:notifications"))


__all__: list[Any] = []
