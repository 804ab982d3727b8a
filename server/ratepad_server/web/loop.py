"""The closed loop in the web: alerts (acknowledge, assign, comment, resolve), alert rules,
appeals (a staff member disputes a rating; a manager upholds or rejects) and notifications."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    BadRequest,
    ValidationError,
)
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Field, Max, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..alerts.engine import TransitionError, record_event, transition
from ..alerts.models import (
    ACKNOWLEDGED,
    KIND_FIELDS,
    OPEN,
    Alert,
    Comment,
    Notification,
    Rule,
)
from ..alerts.models import PARAMETERS as RULE_PARAMETERS
from ..alerts.preview import preview_rule
from ..audit.log import record
from ..org.models import Node, Role, Staff
from ..reports.service import TZ
from . import notes, paging
from .access import ACTORS, ADMINS, ALL, READERS, check_path, get_role, roles, scoped_node, user_of


def _alert(request: HttpRequest, pk: int) -> Alert:
    alert = Alert.objects.select_related("rule", "branch", "window", "assignee").filter(
        pk=pk).first()  # fmt: skip
    if alert is None:
        raise Http404(gettext("no such alert"))
    check_path(request, alert.branch.path)
    return alert


PAGE = 50  # alerts per page of the queue
SORTS = {  # ?sort= → the order (the newest first unless asked otherwise)
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "deadline": ("deadline", "-created_at", "-id"),
    "-deadline": ("-deadline", "-created_at", "-id"),
    "-count": ("-count", "-created_at", "-id"),
}
SORT_LABELS = [
    ("-created", _("newest first")),
    ("created", _("oldest first")),
    ("deadline", _("deadline, soonest first")),
    ("-deadline", _("deadline, latest first")),
    ("-count", _("largest count first")),
]
UNRESOLVED = (OPEN, ACKNOWLEDGED)


def _today() -> date:
    return timezone.now().astimezone(TZ).date()


def _queue(request: HttpRequest, role: Role) -> tuple[QuerySet[Alert], dict[str, str]]:
    """The alerts the query string asks for (``state``, ``node``, ``rule``, ``assignee``,
    ``overdue``, ``digest``), inside the caller's subtree, and the filters as understood."""
    g = request.GET
    node = scoped_node(request, g["node"]) if g.get("node") else role.node
    rows = Alert.objects.filter(branch__path__startswith=node.path, digest=g.get("digest") == "1")
    state = g.get("state", "")
    if state == "unresolved":
        rows = rows.filter(state__in=UNRESOLVED)
    elif state:
        if state not in dict(Alert.STATES):
            raise BadRequest(gettext("unknown state"))
        rows = rows.filter(state=state)
    if g.get("rule"):
        if not g["rule"].isdigit():
            raise BadRequest(gettext("rule: a rule's number"))
        rows = rows.filter(rule_id=int(g["rule"]))
    assignee = g.get("assignee", "")
    if assignee == "-":
        rows = rows.filter(assignee__isnull=True)
    elif assignee:
        rows = rows.filter(assignee__username=assignee)
    if g.get("overdue") == "1":
        rows = rows.filter(state__in=UNRESOLVED, deadline__lt=_today())
    shown = {k: g.get(k, "") for k in ("state", "node", "rule", "assignee", "overdue", "digest")}
    return rows, shown


def _overview(node: Node) -> dict[str, int]:
    """Counts of the subtree's alerts for the queue's head: open, acknowledged, overdue, and
    the digests' (kept out of the live queue: the "n more")."""
    rows = Alert.objects.filter(branch__path__startswith=node.path, state__in=UNRESOLVED)
    return rows.aggregate(
        open=Count("id", filter=Q(state=OPEN, digest=False)),
        acknowledged=Count("id", filter=Q(state=ACKNOWLEDGED, digest=False)),
        overdue=Count("id", filter=Q(deadline__lt=_today(), digest=False)),
        digests=Count("id", filter=Q(digest=True)),
        more=Sum("count", filter=Q(digest=True), default=0),
    )


@roles(*READERS)
@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    rows, shown = _queue(request, role)
    sort = request.GET.get("sort", "-created")
    if sort not in SORTS:
        raise BadRequest(gettext("unknown order"))
    rows = (
        rows.select_related("branch", "rule", "window", "assignee")
        .defer("resolution", "branch__path", "rule__emails", "rule__webhook")
        .order_by(*SORTS[sort])
    )
    page = Paginator(rows, PAGE).get_page(request.GET.get("page"))
    query = {k: v for k, v in shown.items() if v}
    rules = Rule.objects.filter(node__path__startswith=role.node.path).order_by("name")
    return render(request, "web/alerts.html", {
        "page": page, "alerts": page.object_list, "shown": shown, "sort": sort,
        "query": urlencode({**query, "sort": sort}), "filters": urlencode(query),
        "overview": _overview(role.node), "today": _today(), "rules": rules,
        "overdue_word": _("overdue"), "alert_base": reverse("web:alerts"),  # + pk + "/"
        "sort_labels": SORT_LABELS, "assignable": _assignable_in(role),
        "states": [("", _("all")), ("unresolved", _("unresolved")), *Alert.STATES],
        # compatibility: the old ?state= links
        "state": shown["state"],
    })  # fmt: skip


def _assignable_in(role: Role) -> QuerySet[Any]:
    """Managers and admins of the caller's subtree (the bulk form; each alert checks again)."""
    if role.role not in ACTORS:
        return get_user_model().objects.none()
    return get_user_model().objects.filter(
        ratepad_role__role__in=ACTORS, ratepad_role__node__path__startswith=role.node.path
    ).order_by("username")  # fmt: skip


def _assignable(role: Role, branch: Node) -> QuerySet[Any]:
    """Who may be assigned an alert at ``branch``: managers and admins whose subtree holds the
    branch, inside the caller's own subtree (an empty list for a viewer)."""
    if role.role not in ACTORS:
        return get_user_model().objects.none()
    above = [p for p in _ancestors(branch) if p.startswith(role.node.path)]
    return get_user_model().objects.filter(
        ratepad_role__role__in=ACTORS, ratepad_role__node__path__in=above
    ).order_by("username")  # fmt: skip


@roles(*READERS)
@require_GET
def alert(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    role = get_role(request)
    ratings = list(a.ratings.select_related("window")[:200])
    staff_ids = {r.staff_id for r in ratings if r.staff_id} | ({a.staff_id} - {""})
    names = dict(Staff.objects.filter(staff_id__in=staff_ids).values_list("staff_id", "name"))
    day = a.created_at.astimezone(TZ).date()
    first = min((r.time for r in ratings), default=a.created_at).astimezone(TZ).date()
    return render(request, "web/alert.html", {
        "alert": a, "history": _history(a), "assignable": _assignable(role, a.branch),
        "overdue": a.overdue, "ratings": ratings, "more_ratings": max(0, a.count - len(ratings))
        if ratings else 0, "staff_names": names, "since": first.isoformat(),
        "until": max(day, _today()).isoformat(),
    })  # fmt: skip


def _history(a: Alert) -> list[dict[str, Any]]:
    """State changes, assignments, comments and notifications, in time order."""
    lines = [{"at": e.at, "who": e.actor.username if e.actor else "", "action": e.action,
              "label": EVENT_LABELS.get(e.action, e.action), "note": e.note, "data": e.data}
             for e in a.events.select_related("actor")]  # fmt: skip
    lines += [{"at": c.at, "who": c.author.username if c.author else "", "action": "comment",
               "label": EVENT_LABELS["comment"], "note": c.text, "data": {}}
              for c in a.comments.select_related("author")]  # fmt: skip
    return sorted(lines, key=lambda line: line["at"])


EVENT_LABELS = {
    "raised": _("raised"),
    "notified": _("notified"),
    "acknowledge": _("acknowledged"),
    "assign": _("assigned"),
    "resolve": _("resolved"),
    "comment": _("comment"),
    # the steps of the closed loop's case about the alert's rating (``casework``)
    "case.verify": _("verify"),
    "case.rectify": _("rectify"),
    "case.answer": _("answer"),
    "case.close": _("close"),
}


def _act(request: HttpRequest, a: Alert, action: str, note: str, assignee: str) -> None:
    """One action on one alert (``BadRequest`` says why it cannot be done)."""
    user = user_of(request)
    if action == "assign":
        target = get_user_model().objects.filter(username=assignee).first()
        target_role = Role.objects.select_related("node").filter(user=target).first()
        if target is None or target_role is None or target_role.role not in ACTORS:
            raise BadRequest(gettext("assign to a manager or an admin"))
        check_path(request, target_role.node.path)
        if not a.branch.path.startswith(target_role.node.path):
            raise BadRequest(
                gettext("assign to someone whose part of the organisation holds the alert")
            )
        with transaction.atomic():
            Alert.objects.filter(pk=a.pk).update(assignee=target)
            Notification.objects.create(user=target, alert=a, text=notes.assigned(a))
            record_event(a, "assign", user, note, assignee=target.username)
        record(request, "alert.assign", a, node_path=a.branch.path, assignee=assignee)
    elif action in ("acknowledge", "resolve"):
        if action == "resolve" and not note:
            raise BadRequest(gettext("say how it was resolved"))
        try:
            transition(a, action, user, note)
        except TransitionError as exc:
            raise BadRequest(str(exc)) from None
        record(request, f"alert.{action}", a, node_path=a.branch.path, note=note)
    else:
        raise BadRequest(gettext("unknown action"))


@roles(*ACTORS)
@require_POST
def alert_act(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    note = request.POST.get("note", "").strip()[:5000]
    _act(request, a, request.POST.get("action", ""), note, request.POST.get("assignee", ""))
    return HttpResponseRedirect(reverse("web:alert", args=[a.pk]))


BULK_MAX = 500  # alerts one bulk action takes


@roles(*ACTORS)
@require_POST
def alerts_bulk(request: HttpRequest) -> HttpResponse:
    """Acknowledge, assign or resolve the ticked alerts with one note; those whose state does
    not allow it are skipped and counted."""
    ids = request.POST.getlist("ids")
    if not ids or len(ids) > BULK_MAX or not all(i.isdigit() for i in ids):
        raise BadRequest(gettext("tick 1 to %(n)d alerts") % {"n": BULK_MAX})
    action = request.POST.get("action", "")
    note = request.POST.get("note", "").strip()[:5000]
    if action == "resolve" and not note:
        raise BadRequest(gettext("say how they were resolved"))
    if action not in ("acknowledge", "assign", "resolve"):
        raise BadRequest(gettext("unknown action"))
    role = get_role(request)
    chosen = Alert.objects.select_related("branch", "rule").filter(
        pk__in=[int(i) for i in ids], branch__path__startswith=role.node.path)  # fmt: skip
    done = skipped = 0
    for a in chosen:
        try:
            _act(request, a, action, note, request.POST.get("assignee", ""))
            done += 1
        except BadRequest:
            skipped += 1
    back = request.POST.get("back", "")
    query = urlencode({"done": done, "skipped": skipped})
    safe = back if back.startswith("?") and "\n" not in back else "?"
    return HttpResponseRedirect(reverse("web:alerts") + safe + ("&" if safe != "?" else "")
                                + query)  # fmt: skip


@roles(*ACTORS)
@require_POST
def alert_comment(request: HttpRequest, pk: int) -> HttpResponse:
    a = _alert(request, pk)
    text = request.POST.get("text", "").strip()[:5000]
    if not text:
        raise BadRequest(gettext("an empty comment"))
    Comment.objects.create(alert=a, author=user_of(request), text=text)
    record(request, "alert.comment", a, node_path=a.branch.path)
    return HttpResponseRedirect(reverse("web:alert", args=[a.pk]))


# -- rules ---------------------------------------------------------------------------------------
def _rule(request: HttpRequest, pk: int) -> Rule:
    rule = Rule.objects.select_related("node").filter(pk=pk, deleted_at__isnull=True).first()
    if rule is None:
        raise Http404(gettext("no such rule"))
    check_path(request, rule.node.path)
    return rule


def _nodes(role: Role) -> list[Node]:
    """The nodes a rule may be set at: the caller's subtree, in tree order, indented."""
    nodes = list(Node.objects.filter(path__startswith=role.node.path).order_by("path"))
    top = role.node.path.count("/")
    for n in nodes:
        n.depth_pad = "\u3000" * (n.path.count("/") - top)  # type: ignore[attr-defined]
    return nodes


@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponse:
    """The rules of the subtree; a POST here creates one (as ``rule_new``)."""
    if request.method == "POST":
        return _rule_form(request, None, request.POST.get("kind", ""))
    role = get_role(request)
    rows = list(Rule.objects.select_related("node").filter(
        node__path__startswith=role.node.path, deleted_at__isnull=True
    ).order_by("node__path", "name"))  # fmt: skip
    for r in rows:  # the table's parameter columns: "–" where the kind does not use one
        r.used = [{"used": f in KIND_FIELDS[r.kind], "value": getattr(r, f)}  # type: ignore[attr-defined]
                  for f in RULE_PARAMETERS]  # fmt: skip
    return render(request, "web/rules.html", {"rules": rows, "kinds": Rule.KINDS})


@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    return _rule_form(request, None, request.GET.get("kind") or request.POST.get("kind", ""))


@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule(request, pk)
    return _rule_form(request, rule, rule.kind)


def _rule_form(request: HttpRequest, rule: Rule | None, kind: str) -> HttpResponse:
    """The form of one kind of rule (only the fields it uses): new or edited, saved, or tested
    on last week (``preview``)."""
    if kind not in dict(Rule.KINDS):
        raise BadRequest(gettext("unknown kind of rule"))
    role = get_role(request)
    fields = KIND_FIELDS[kind]
    error, preview = "", None
    draft = rule or Rule(kind=kind, node=role.node)
    if request.method == "POST":
        p = request.POST
        before = _rule_values(draft) if rule else {}
        try:
            draft = Rule(
                pk=rule.pk if rule else None, kind=kind, active=rule.active if rule else True,
                node=scoped_node(request, p.get("node", "") or role.node.code),
                name=p.get("name", "").strip()[:200] or kind,
                emails=p.get("emails", "").strip()[:1000],
                webhook=p.get("webhook", "").strip(),
                # as typed: the model's validators convert them and say what is wrong; the
                # fields this kind does not use keep their defaults
                **{f: (p.get(f, "").strip() if f in fields else "") or _default(rule, f)
                   for f in RULE_PARAMETERS},
            )  # fmt: skip
            draft._state.adding = rule is None  # an edit updates its row
            draft.full_clean()
            _check_emails(draft.emails)
            if "preview" in p:
                preview = preview_rule(draft)
            else:
                draft.save()
                after = _rule_values(draft)
                if rule:
                    changed = {k: [before.get(k), v] for k, v in after.items()
                               if before.get(k) != v}  # fmt: skip
                    record(request, "rule.edit", draft, node_path=draft.node.path,
                           changed=changed)  # fmt: skip
                else:
                    record(request, "rule.create", draft, node_path=draft.node.path, kind=kind)
                return HttpResponseRedirect(reverse("web:rules"))
        except ValidationError as exc:
            error = _validation_message(exc)
        except ValueError as exc:
            error = str(exc)
    return render(request, "web/rule.html", {
        "rule": draft, "editing": rule is not None, "kind": kind,
        "kind_label": dict(Rule.KINDS)[kind], "fields": fields, "nodes": _nodes(role),
        "error": error, "preview": preview,
    }, status=400 if error else 200)  # fmt: skip


def _check_emails(text: str) -> None:
    """Each address of the rule's "e-mail to" (commas or spaces between them) is one."""
    for address in text.replace(",", " ").split():
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(
                {"emails": _("not an e-mail address: %(address)s") % {"address": address}}
            ) from None


def _default(rule: Rule | None, name: str) -> Any:
    return getattr(rule, name) if rule is not None else _rule_field(name).default


def _rule_values(rule: Rule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in ("name", "node_id", "emails", "webhook", "active",
                                          *RULE_PARAMETERS)}  # fmt: skip


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
    rule = _rule(request, pk)
    problems = rule.problems()
    if problems and not rule.active:  # switched off for bad parameters: it stays off
        raise BadRequest(
            gettext("this rule's parameters are out of bounds: %(problems)s")
            % {"problems": "; ".join(problems)}
        )
    Rule.objects.filter(pk=pk).update(active=not rule.active)
    record(request, "rule.toggle", rule, node_path=rule.node.path, active=not rule.active)
    return HttpResponseRedirect(reverse("web:rules"))


@roles(*ADMINS)
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Deleted, and kept: its alerts still name it, the audit log holds what it was."""
    rule = _rule(request, pk)
    Rule.objects.filter(pk=pk).update(active=False, deleted_at=timezone.now())
    record(request, "rule.delete", rule, node_path=rule.node.path, kind=rule.kind,
           rule=_rule_values(rule))  # fmt: skip
    return HttpResponseRedirect(reverse("web:rules"))


def _ancestors(node: Node) -> list[str]:
    return ["/".join(node.path.split("/")[: i + 1]) + "/" for i in range(1, node.path.count("/"))]


# -- notifications -------------------------------------------------------------------------------
NOTES_PER_PAGE = (30, 100, 200)  # groups per page
NOTE_SORTS = {"-last": ("-last", "-last_id"), "last": ("last", "last_id")}
NOTE_SORT_LABELS = {"-last": _("newest first"), "last": _("oldest first")}
NOTE_KINDS = {"alert": _("alerts"), "appeal": _("appeals"), "other": _("other")}


@roles(*ALL)
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The caller's notifications, one line per alert (or appeal): how many, how many unread,
    the latest; filtered (unread, kind), sorted and paged with the count."""
    mine = Notification.objects.filter(user=user_of(request))
    kind = paging.choice(request, "kind", NOTE_KINDS)
    if kind == "alert":
        mine = mine.filter(alert__isnull=False)
    elif kind == "appeal":
        mine = mine.filter(appeal__isnull=False)
    elif kind == "other":
        mine = mine.filter(alert__isnull=True, appeal__isnull=True)
    sort = paging.choice(request, "sort", NOTE_SORTS, "-last")
    unread_only = request.GET.get("unread") == "1"
    groups = (
        mine.values("alert_id", "appeal_id", "link")
        .annotate(
            n=Count("id"),
            unread=Count("id", filter=Q(read_at__isnull=True)),
            last=Max("created_at"),
            last_id=Max("id"),
        )
        .order_by(*NOTE_SORTS[sort])
    )
    if unread_only:
        groups = groups.filter(unread__gt=0)
    page, per = paging.page_of(request, groups, NOTES_PER_PAGE)
    rows: list[dict[str, Any]] = [dict(g) for g in page.object_list]
    texts = dict(Notification.objects.filter(pk__in=[g["last_id"] for g in rows])
                 .values_list("pk", "text"))  # fmt: skip
    found = Alert.objects.select_related("branch", "rule", "window").in_bulk(
        [g["alert_id"] for g in rows if g["alert_id"]])  # fmt: skip
    for g in rows:
        g["alert"] = found.get(g["alert_id"]) if g["alert_id"] else None
        g["text"] = notes.text(texts.get(g["last_id"], ""), g["alert"])
    shown = {"kind": kind, "unread": "1" if unread_only else "", "sort": sort}
    filters = [(k, v) for k, v in shown.items() if v and not (k == "sort" and v == "-last")]
    return render(request, "web/notifications.html", {
        "page": page, "groups": rows, "shown": shown, "per": per, "per_choices": NOTES_PER_PAGE,
        "query": urlencode([*filters, ("per", per)]), "kinds": NOTE_KINDS,
        "sort_labels": NOTE_SORT_LABELS,
    })  # fmt: skip


@roles(*ALL)
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark read: the ticked groups (``alert``/``appeal`` ids), or all of them."""
    mine = Notification.objects.filter(user=user_of(request), read_at__isnull=True)
    alerts_ = [int(i) for i in request.POST.getlist("alert") if i.isdigit()]
    appeals_ = [int(i) for i in request.POST.getlist("appeal") if i.isdigit()]
    links = [x for x in request.POST.getlist("link") if x]
    if alerts_ or appeals_ or links:
        other = Q(alert__isnull=True, appeal__isnull=True, link__in=links)
        mine = mine.filter(Q(alert_id__in=alerts_) | Q(appeal_id__in=appeals_) | other)
    mine.update(read_at=timezone.now())
    return HttpResponseRedirect(reverse("web:notifications"))


__all__: list[Any] = []
