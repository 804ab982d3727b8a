"""The 好差评 loop in the web: the cases (a queue with filters and pages; a case's page with
its rating, its steps and the form of the step it waits for), the monthly loop report, the
holiday calendar and the loop's rules per node (admins)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Field, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..audit.log import record
from ..casework.calendar import CalendarFileError, load_days, read_holiday_text
from ..casework.models import CLOSED, STEPS, CalendarDay, Case, Policy, Step
from ..casework.policy import local_date, policy_for
from ..casework.service import StepError, StepInput, do_step, loop_report
from ..ingest.models import Rating
from ..org.models import Node, Role, Staff, Window
from .access import ACTORS, ADMINS, READERS, check_path, get_role, roles, scoped_node, user_of
from .flag_labels import labels
from .period import _date, parse_month

PAGE = 50  # rows per page of the queues


def node_choices(role: Role) -> list[Node]:
    """The nodes of the caller's subtree (a queue's node filter)."""
    return list(Node.objects.filter(path__startswith=role.node.path).order_by("path")[:2000])


RatingKey = tuple[str, int, datetime]  # serial, journal_seq, time


def rating_facts(keys: Iterable[RatingKey]) -> dict[tuple[str, int], dict[str, Any]]:
    """What a page shows of each rating (serial, journal_seq, time): score, time, window, staff
    (id and name), flags, and a link to it in the ratings page; one query per table."""
    keys = list(keys)
    if not keys:
        return {}
    q = Q()
    for serial, seq, when in keys:
        q |= Q(serial=serial, journal_seq=seq, time=when)  # the time: one partition each
    ratings = list(Rating.objects.filter(q))
    windows = {w.pk: w for w in Window.objects.select_related("branch").filter(
        pk__in={r.window_id for r in ratings if r.window_id})}  # fmt: skip
    names = dict(Staff.objects.filter(staff_id__in={r.staff_id for r in ratings})
                 .values_list("staff_id", "name"))  # fmt: skip
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in ratings:
        w = windows.get(r.window_id or 0)
        day = local_date(r.time).isoformat()
        link = ""
        if w is not None:
            link = (reverse("web:ratings", args=[w.branch.code])
                    + f"?since={day}&until={day}&window={w.code}")  # fmt: skip
        out[(r.serial, r.journal_seq)] = {
            "score": r.score, "time": r.time, "received_at": r.received_at,
            "window": w, "staff_id": r.staff_id, "staff_name": names.get(r.staff_id, ""),
            "flags": labels(r.flags), "link": link,
        }  # fmt: skip
    return out


# -- cases -----------------------------------------------------------------------------------------
CASE_FILTERS = ("state", "node", "staff")
OPEN, OVERDUE, ESCALATED = "open", "overdue", "escalated"  # the queue's other state filters


@roles(*READERS)
@require_GET
def cases(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    rows = Case.objects.select_related("branch", "window", "escalated_to").filter(
        branch__path__startswith=role.node.path)  # fmt: skip
    filters = {k: request.GET.get(k, "").strip()[:64] for k in CASE_FILTERS}
    state, today = filters["state"], local_date(timezone.now())
    if state == OPEN:
        rows = rows.exclude(state=CLOSED)
    elif state == OVERDUE:
        rows = rows.exclude(state=CLOSED).filter(deadline__lt=today)
    elif state == ESCALATED:
        rows = rows.filter(escalated_at__isnull=False)
    elif state:
        if state not in dict(Case.STATES):
            raise BadRequest(_("unknown state"))
        rows = rows.filter(state=state)
    if filters["node"]:
        rows = rows.filter(branch__path__startswith=scoped_node(request, filters["node"]).path)
    if filters["staff"]:
        rows = rows.filter(staff_id=filters["staff"])
    page = Paginator(rows.order_by("deadline", "id"), PAGE).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(request, "web/casework.html", {
        "page": page, "filters": filters, "query": query, "today": today,
        "states": [(OPEN, _("open")), (OVERDUE, _("overdue")), (ESCALATED, _("escalated")),
                   *Case.STATES],
        "nodes": node_choices(role),
    })  # fmt: skip


def _case(request: HttpRequest, pk: int) -> Case:
    case = Case.objects.select_related("branch", "window", "alert", "escalated_to").filter(
        pk=pk).first()  # fmt: skip
    if case is None:  # refused like another subtree's: the answer tells nothing
        raise PermissionDenied(_("outside your part of the organisation"))
    check_path(request, case.branch.path)
    return case


def _case_page(request: HttpRequest, case: Case, error: str = "") -> HttpResponse:
    facts = rating_facts([(case.serial, case.journal_seq, case.rating_time)])
    return render(request, "web/casework_case.html", {
        "case": case, "steps": case.steps.select_related("by"),
        "rating": facts.get((case.serial, case.journal_seq)), "error": error,
        "overdue": case.state != CLOSED and case.deadline < local_date(timezone.now()),
        "channels": Step.CHANNELS, "can_act": get_role(request).role in ACTORS,
    }, status=400 if error else 200)  # fmt: skip


@roles(*READERS)
@require_GET
def case(request: HttpRequest, pk: int) -> HttpResponse:
    return _case_page(request, _case(request, pk))


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@roles(*ACTORS)
@require_POST
def case_step(request: HttpRequest, pk: int) -> HttpResponse:
    c = _case(request, pk)
    p = request.POST
    step = p.get("step", "")
    if step not in STEPS:
        raise BadRequest(_("unknown step"))
    given = StepInput(
        note=p.get("note", ""),
        genuine=_yes_no(p.get("genuine")),
        contacted=_yes_no(p.get("contacted")),
        channel=p.get("channel", ""),
    )
    try:
        do_step(c, step, user_of(request), given)
    except StepError as exc:
        return _case_page(request, c, str(exc))
    record(request, f"case.{step}", c, node_path=c.branch.path, note=given.note.strip()[:500],
           genuine=given.genuine, contacted=given.contacted, channel=given.channel)  # fmt: skip
    return HttpResponseRedirect(reverse("web:case", args=[c.pk]))


# -- the monthly loop report -----------------------------------------------------------------------
@roles(*READERS)
@require_GET
def loop_month(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    node = scoped_node(request, request.GET.get("node") or role.node.code)
    if request.GET.get("month"):
        first = parse_month(request).first
    else:
        first = local_date(timezone.now()).replace(day=1)
    report = loop_report(node, first)
    return render(request, "web/casework_report.html", {
        "report": report, "node": node, "month": f"{first:%Y-%m}", "nodes": node_choices(role),
    })  # fmt: skip


# -- the holiday calendar (admins of the whole organisation) ---------------------------------------
def _top_admin(request: HttpRequest) -> None:
    """The calendar is everyone's: only an admin of a top node edits it."""
    if get_role(request).node.parent_id is not None:
        raise PermissionDenied(_("only an admin of the whole organisation edits the calendar"))


@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def holidays(request: HttpRequest) -> HttpResponse:
    _top_admin(request)
    today = local_date(timezone.now())
    try:
        year = int(request.GET.get("year") or today.year)
    except ValueError:
        raise BadRequest(_("year: YYYY")) from None
    if not 2000 <= year <= 2099:
        raise BadRequest(_("year: 2000..2099"))
    error = ""
    if request.method == "POST":
        try:
            year = _holiday_post(request) or year
            return HttpResponseRedirect(reverse("web:holidays") + f"?year={year}")
        except (CalendarFileError, ValidationError) as exc:
            error = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
    days = CalendarDay.objects.filter(day__year=year)
    return render(request, "web/holidays.html", {"days": days, "year": year, "error": error,
                  "years": range(today.year - 1, today.year + 3)},
                  status=400 if error else 200)  # fmt: skip


def _holiday_post(request: HttpRequest) -> int | None:
    """Add, change or remove a day, or load a file; the year to show next."""
    p = request.POST
    action = p.get("action", "")
    if action == "load":
        upload = request.FILES.get("file")
        if upload is None or (upload.size or 0) > 100_000:
            raise CalendarFileError(_("Choose a TOML file (at most 100 kB)."))
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise CalendarFileError(_("The file is not UTF-8 text.")) from None
        days = read_holiday_text(text, upload.name or "file")
        added, changed = load_days(days)
        record(request, "holidays.load", file=upload.name or "", added=added, changed=changed)
        return days[0][0].year
    day = _date(p.get("day", ""), "day")
    if action == "remove":
        CalendarDay.objects.filter(day=day).delete()
        record(request, "holidays.remove", day=day.isoformat())
        return day.year
    if action != "set" or p.get("working") not in ("yes", "no"):
        raise BadRequest(_("unknown action"))
    working = p["working"] == "yes"
    row = CalendarDay(day=day, working=working, name=p.get("name", "").strip()[:100])
    row.full_clean(validate_unique=False)
    CalendarDay.objects.update_or_create(day=day, defaults={"working": working,
                                                            "name": row.name})  # fmt: skip
    record(request, "holidays.set", day=day.isoformat(), working=working, name=row.name)
    return day.year


# -- the loop's rules per node (admins) ------------------------------------------------------------
POLICY_FIELDS = ("case_level", "case_days", "appeal_level", "appeal_days")


def _policy_field(name: str) -> Field[Any, Any]:
    field = Policy._meta.get_field(name)
    if not isinstance(field, Field):  # the reverse side of a relation: none of the rules
        raise ValueError(f"no field {name!r}")
    return field


@roles(*ADMINS)
@require_http_methods(["GET", "POST"])
def loop_policy(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    error = ""
    if request.method == "POST":
        node = scoped_node(request, request.POST.get("node", ""))
        policy = Policy.objects.filter(node=node).first() or Policy(node=node)
        if request.POST.get("action") == "remove":
            if policy.pk:
                policy.delete()
                record(request, "loop_policy.remove", node_path=node.path, node=node.code)
            return HttpResponseRedirect(reverse("web:loop_policy"))
        for name in POLICY_FIELDS:
            setattr(policy, name, request.POST.get(name, "").strip() or getattr(policy, name))
        try:
            policy.full_clean(exclude=["node"])
            policy.save()
            record(request, "loop_policy.set", policy, node_path=node.path, node=node.code,
                   **{n: getattr(policy, n) for n in POLICY_FIELDS})  # fmt: skip
            return HttpResponseRedirect(reverse("web:loop_policy"))
        except ValidationError as exc:
            error = "; ".join(f"{_policy_field(f).verbose_name}: {' '.join(m)}"
                              for f, m in exc.message_dict.items())  # fmt: skip
    rows = Policy.objects.select_related("node").filter(node__path__startswith=role.node.path)
    return render(request, "web/casework_policy.html", {
        "policies": rows.order_by("node__path"), "nodes": node_choices(role), "error": error,
        "effective": policy_for(role.node), "fields": [_policy_field(f) for f in POLICY_FIELDS],
    }, status=400 if error else 200)  # fmt: skip
