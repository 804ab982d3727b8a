"""The managers' web: login, reports with drill-down, the live wall, ratings, surveys, audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from ratepad.errors import RatepadError
from ratepad.flags import BY_NAME
from ratepad.surveys import ScoreTable, parse_scores_csv, survey_report

from ..accounts.backends import was_throttled
from ..alerts.models import Alert, Appeal
from ..audit.log import record
from ..audit.models import AuditEntry
from ..dbrouter import reads_from_replica
from ..ingest.models import Device, Rating
from ..live.feed import Style
from ..live.stream import open_stream
from ..org.models import Node, Role, Staff, Window
from ..reports import service as reports
from . import flag_labels, ratinglist
from .access import ADMINS, ALL, READERS, get_role, roles, scoped_node, user_of
from .period import Period, parse_period


# -- login ---------------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    """Django's login, behind the one throttle of every login (``accounts.backends``): after 5
    failures in 15 minutes for a user name, or 20 from one address, 429 with a message."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        if was_throttled(self.request):
            return render(self.request, self.template_name,
                          {"form": form, "throttled": True}, status=429)  # fmt: skip
        return super().form_invalid(form)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("web:login"))
    role = Role.objects.select_related("node").filter(user=request.user).first()
    if role is None:
        raise PermissionDenied("this account has no role")
    if role.role == Role.STAFF:
        return HttpResponseRedirect(reverse("web:ratings", args=[role.node.code]))
    return HttpResponseRedirect(reverse("web:report", args=[role.node.code]))


# -- reports -------------------------------------------------------------------------------------
def _scope(request: HttpRequest, node: Node, period: Period) -> reports.Scope:
    window = None
    if request.GET.get("window"):
        window = Window.objects.filter(
            code=request.GET["window"], branch__path__startswith=node.path
        ).first()
        if window is None:
            raise Http404("no such window here")
    staff = request.GET.get("staff") or None
    role = get_role(request)
    if role.role == Role.STAFF:
        staff = role.staff.staff_id if role.staff else "\x00"
    return reports.Scope(node, period.since, period.until, window, staff)


def _breadcrumbs(request: HttpRequest, node: Node) -> list[Node]:
    top = get_role(request).node
    chain = []
    n: Node | None = node
    while n is not None:
        chain.append(n)
        if n.pk == top.pk:
            break
        n = n.parent
    return list(reversed(chain))


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "stats": row.get("stats") or row["cell"].stats()}


@roles(*READERS)
@require_GET
@reads_from_replica
def report(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_period(request)
    scope = _scope(request, node, period)
    parent = reports.total(scope)
    kids = reports.children(scope)
    # staff are the last level of the drill-down: listed at a branch or a window, not above
    at_branch = not Node.objects.filter(parent=node).exists()
    staff = reports.staff_rows(scope) if at_branch and scope.staff_id is None else []
    units = kids if kids else staff
    ranked = reports.ranking(units, parent)
    time_data = reports.heatmap_and_flow(scope)
    context = {
        "node": node, "period": period, "scope": scope, "crumbs": _breadcrumbs(request, node),
        "total": parent.stats(), "rows": [_row(r) for r in kids],
        "staff": [_row(r) for r in staff],
        "ranking": ranked,
        "compare": reports.compare(scope, parent, *period.comparison_spans()),
        "efficiency": reports.staff_efficiency(scope, staff or None) if at_branch else [],
        "min_n": reports.MIN_N,
        "chart": {
            "heatmap": time_data["heatmap"], "flow": time_data["flow"],
            "series": time_data["series"], "funnel": reports.funnel(units, parent),
        },
    }  # fmt: skip
    return render(request, "web/report.html", context)


# -- the live wall -------------------------------------------------------------------------------
SILENT = timedelta(minutes=3)  # three missed agent heartbeats: the keypad counts as offline


def _window_state(device: Device | None, now: datetime) -> str:
    if device is None or not device.connected:
        return "offline"
    heard = device.updated_at  # the agent's clock; its last upload is the server's
    if device.agent is not None and device.agent.last_upload_at is not None:
        heard = device.agent.last_upload_at
    if now - heard > SILENT:
        return "offline"
    return "prompted" if device.state == "prompted" else "online"


@roles(*READERS)
@require_GET
def live(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    branch_ids = list(Node.objects.filter(path__startswith=node.path).values_list("pk", flat=True))
    windows = list(Window.objects.filter(branch_id__in=branch_ids).select_related("branch")
                   .order_by("code"))  # fmt: skip
    devices = {d.window_id: d for d in Device.objects.filter(branch_id__in=branch_ids)
               .select_related("agent")}  # fmt: skip
    names = dict(Staff.objects.filter(branch_id__in=branch_ids).values_list("staff_id", "name"))
    now = timezone.now()
    # the latest of the last day (one partition, the (branch, time) index; an unbounded
    # "latest 20" would sort every rating of the subtree)
    latest = list(Rating.objects.filter(branch_id__in=branch_ids, window__isnull=False,
                                        time__gte=now - timedelta(days=1))
                  .order_by("-time")[:20])  # fmt: skip
    codes = {w.pk: w.code for w in windows}
    tiles = []
    for w in windows:
        d = devices.get(w.pk)
        tiles.append(
            {
                "window": w,
                "state": _window_state(d, now),
                "serial": d.serial if d else "",
                "staff_id": (d.staff_id or "") if d else "",
                "staff_name": names.get(d.staff_id or "", "") if d else "",
            }
        )
    alerts = Alert.objects.filter(branch_id__in=branch_ids).exclude(state="resolved")[:50]
    context = {
        "node": node, "tiles": tiles, "alerts": alerts, "crumbs": _breadcrumbs(request, node),
        "latest": [{"time": r.time, "window": codes.get(r.window_id or 0, ""), "score": r.score,
                    "staff_id": r.staff_id, "flags": _flags(r.flags)} for r in latest],
        "staff_names": names, "time_zone": str(reports.TZ),
    }  # fmt: skip
    return render(request, "web/live.html", context)


@roles(*READERS)
@require_GET
def live_events(request: HttpRequest, code: str) -> HttpResponseBase:
    """Server-sent events for the wall: ratings, device states and alerts of the subtree, as
    they commit on any server instance (the server's live fan-out, ``live.stream``)."""
    node = scoped_node(request, code)
    try:
        seconds = min(3600.0, max(0.1, float(request.GET.get("seconds", "600"))))
    except ValueError:
        seconds = 600.0
    style = Style(tuple((name, flag_labels.label(name)) for name in flag_labels.LABELS))
    kinds = ("rating", "device", "alert")
    return open_stream(user=user_of(request).pk, node=node, seconds=seconds, kinds=kinds,
                       style=style)  # fmt: skip


def _flags(flags: int) -> list[str]:
    """What the pages, the live wall and the exports show of a rating's flags."""
    return flag_labels.labels(flags)


# -- ratings (a staff member: their own) ---------------------------------------------------------
@roles(*ALL)
@require_GET
def ratings(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_period(request)
    scope = _scope(request, node, period)
    filters = ratinglist.parse_filters(request)
    page, per = ratinglist.page_of(request, ratinglist.filtered(scope, filters))
    rows = ratinglist.rows(scope, page.object_list)
    appeals = {(a.serial, a.journal_seq): a for a in Appeal.objects.filter(
        serial__in={r["serial"] for r in rows})}  # fmt: skip
    for r in rows:
        r["appeal"] = appeals.get((r["serial"], r["journal_seq"]))
    summary = reports.total(scope).stats()
    scope_pairs = [(k, request.GET[k]) for k in ("window", "staff") if request.GET.get(k)]
    base = [*period.pairs(), *scope_pairs]
    return render(request, "web/ratings.html", {
        "node": node, "period": period, "rows": rows, "total": summary, "scope": scope,
        "crumbs": _breadcrumbs(request, node), "min_n": reports.MIN_N, "page": page,
        "filters": filters, "query": urlencode([*base, *filters.query(), ("per", per)]),
        "filter_base": base, "per": per, "per_choices": ratinglist.PER_PAGE,
        "sort_labels": ratinglist.SORT_LABELS, "prompted_labels": ratinglist.PROMPTED,
        "flag_choices": [(n, flag_labels.label(n)) for n in BY_NAME],
        "windows": Window.objects.filter(branch__path__startswith=node.path).order_by("code"),
    })  # fmt: skip


# -- questionnaire surveys (Cronbach's alpha) ----------------------------------------------------
# an upload is analysed inside the request (the statistics grow with items² × respondents):
# bounded so that one file holds a worker thread for seconds, not minutes
SURVEY_MAX_BYTES = 5 * 1024 * 1024
SURVEY_MAX_LINES = 50_000
SURVEY_MAX_RESPONDENTS, SURVEY_MAX_ITEMS = 10_000, 60


def _survey_too_big(request: HttpRequest) -> bool:
    """Judged on the request's length, before Django parses the multipart body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > SURVEY_MAX_BYTES + 64 * 1024  # the form's other fields and boundaries


@roles(*READERS)
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    if request.method == "POST":
        too_big = _("The file is larger than %(mb)d MB.") % {"mb": SURVEY_MAX_BYTES >> 20}
        upload = None if _survey_too_big(request) else request.FILES.get("file")
        if upload is None:
            context["error"] = too_big if _survey_too_big(request) else _("Choose a CSV file.")
        elif (upload.size or 0) > SURVEY_MAX_BYTES:
            context["error"] = too_big
        else:
            try:
                context["report"] = survey_report(_survey_table(upload))
                context["name"] = upload.name
                record(request, "survey.analyse", name=upload.name)
            except UnicodeDecodeError:
                context["error"] = _("The file is not UTF-8 text.")
            except (RatepadError, ValueError) as exc:
                context["error"] = str(exc)
        status = 400 if "error" in context else 200
        status = 413 if context.get("error") == too_big else status
        return render(request, "web/survey.html", context, status=status)
    return render(request, "web/survey.html", context)


def _survey_table(upload: Any) -> ScoreTable:
    text = upload.read().decode("utf-8-sig")
    if text.count("\n") > SURVEY_MAX_LINES:
        raise ValueError(_("At most %(n)d lines.") % {"n": SURVEY_MAX_LINES})
    table = parse_scores_csv(text, source=upload.name or "upload")
    if len(table.scores) > SURVEY_MAX_RESPONDENTS or len(table.items) > SURVEY_MAX_ITEMS:
        raise ValueError(_("At most %(n)d respondents and %(k)d items.")
                         % {"n": SURVEY_MAX_RESPONDENTS, "k": SURVEY_MAX_ITEMS})  # fmt: skip
    return table


# -- the audit log -------------------------------------------------------------------------------
@roles(*ADMINS)
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    role = get_role(request)
    entries = AuditEntry.objects.select_related("user")
    if role.node.parent_id is not None:  # a subtree's admin: entries of that subtree
        entries = entries.filter(node_path__startswith=role.node.path)
    return render(request, "web/audit.html", {"entries": entries[:500]})
