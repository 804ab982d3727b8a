"""The managers' web: login, reports with drill-down, the live wall, ratings, surveys, audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import views as auth_views
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import render
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from ratepad.flags import BY_NAME

from ..accounts.backends import was_throttled
from ..alerts.models import Appeal
from ..dbrouter import reads_from_replica
from ..ingest.models import Device
from ..org.models import Node, Role, Window
from ..reports import service as reports
from . import auditlog, flag_labels, ratinglist, surveys
from .access import ALL, READERS, get_role, roles, scoped_node
from .period import Period, parse_period
from .units import report_units


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


# -- reports -------------------------------------------------------------------------------------
def _scope(request: HttpRequest, node: Node, period: Period) -> reports.Scope:
    window = None
    if request.GET.get("window"):
        window = Window.objects.filter(
            code=request.GET["window"], branch__path__startswith=node.path
        ).first()
        if window is None:
            raise Http404(_("no such window here"))
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


@roles(*READERS)
@require_GET
@reads_from_replica
def report(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_period(request)
    scope = _scope(request, node, period)
    # the units with their ranking and badges (the export and the monthly PDF read the same)
    found = report_units(scope, period.comparison_spans()[0])
    parent, staff, units = found.parent, found.staff, found.listed
    time_data = reports.heatmap_and_flow(scope)
    funnel = reports.funnel(units, parent)
    names = {r["code"]: r["name"] for r in units}
    efficiency = reports.staff_efficiency(scope, staff or None)
    context = {
        "node": node, "period": period, "scope": scope, "crumbs": _breadcrumbs(request, node),
        "total": parent.stats(),
        "rows": found.kids, "staff": staff,
        "outliers": [{**pt, "name": names.get(pt["code"], ""), "below": pt["csat"] < funnel["p0"]}
                     for pt in funnel["points"] if pt.get("outside")],
        "ranking": found.ranking,
        "compare": reports.compare(scope, parent, *period.comparison_spans()),
        "efficiency": efficiency, "efficiency_total": reports.efficiency_total(efficiency),
        "min_n": reports.MIN_N,
        "survey": surveys.survey_context(node, period.first, period.last, period.previous(),
                                         period.year_before()),
        "chart": {
            "heatmap": time_data["heatmap"], "flow": time_data["flow"],
            "series": time_data["series"], "funnel": funnel,
            "weekdays": [str(WEEKDAYS_ABBR[d]) for d in range(7)],  # the heatmap's rows
        },
    }  # fmt: skip
    return render(request, "web/report.html", context)


# -- keypad states (the live wall in web/wall.py, the overview) ---------------------------------
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


# the live wall's views: web/wall.py


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


# -- questionnaire surveys: web/surveys.py ------------------------------------------------------
survey = surveys.survey  # the URL map's older name


# -- the audit log: web/auditlog.py ------------------------------------------------------------
audit = auditlog.audit  # the URL map's name
