"""The live wall: a node's windows as tiles grouped by branch, today's figures and today's
alerts, kept current by the server's live stream (``live.stream``).

Two layouts of one page: ``/live/<node>/`` in the site's layout (with the menu, for managers)
and the kiosk, ``/wall/<node>/`` or ``/live/<node>/?kiosk=1``, for a hall screen (no menu, no
links, large type that scales with the screen). The page's dynamic parts are rendered here
only: the first paint, and ``/live/<node>/state`` (the same parts as JSON of HTML fragments),
which the page fetches when it reconnects, every minute (a keypad that falls silent turns
offline without an event) and after new ratings or alerts. Today's figures are the report's
(``reports.total`` over the "today" preset), never recomputed in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from ..alerts.models import Alert
from ..ingest.models import Device, Rating
from ..live.feed import Style
from ..live.stream import open_stream
from ..org.models import Node, Staff, Window
from ..reports import service as reports
from . import flag_labels
from .access import READERS, roles, scoped_node, user_of
from .period import PRESETS, Period, today
from .views import _breadcrumbs, _window_state

TICKER = 8  # today's alerts the ticker holds (newest first; older ones drop)
LATEST = 20  # rows of the latest ratings (the kiosk shows fewer, see ``LATEST_KIOSK``)
LATEST_KIOSK = 10
LAST_RATING_DAYS = 30  # how far back a tile looks for its last rating

# what a reader sees of a keypad's state (the page's JavaScript gets the same words)
STATES = {
    "online": pgettext_lazy("keypad state", "online"),
    "prompted": pgettext_lazy("keypad state", "prompted"),
    "offline": pgettext_lazy("keypad state", "offline"),
}
# the connection's states as the page shows them
LINK = {
    "connecting": _("connecting…"),
    "live": pgettext_lazy("live stream", "live"),
    "reconnecting": _("reconnecting…"),
}


def _seen(device: Device) -> datetime:
    """When an offline keypad was last seen: its last state for a disconnected one, else (an
    agent fallen silent) its agent's last upload."""
    if device.connected and device.agent is not None and device.agent.last_upload_at is not None:
        return device.agent.last_upload_at
    return device.updated_at


@dataclass(frozen=True)
class LastRating:
    time: datetime
    score: int
    staff_id: str


@dataclass(frozen=True)
class Tile:
    window: Window
    state: str
    serial: str
    staff_name: str
    last: LastRating | None
    rated: str  # the name of the staff member the last rating is for
    seen: datetime | None  # when an offline keypad was last heard of

    @property
    def state_label(self) -> str:
        return str(STATES[self.state])


def _branches(node: Node) -> dict[int, Node]:
    return {n.pk: n for n in Node.objects.filter(path__startswith=node.path).order_by("path")}


def _tiles(branches: dict[int, Node], now: datetime) -> list[dict[str, Any]]:
    """The tiles, grouped by branch (in the tree's order): [{"branch": Node, "tiles": [...]}]."""
    since = now - timedelta(days=LAST_RATING_DAYS)
    # each window's last rating: one probe of the (window, time) index per window, one query
    newest = Rating.objects.filter(window_id=OuterRef("pk"), time__gte=since).order_by("-time")
    windows = list(
        Window.objects.filter(branch_id__in=branches)
        .annotate(
            last_time=Subquery(newest.values("time")[:1]),
            last_score=Subquery(newest.values("score")[:1]),
            last_staff=Subquery(newest.values("staff_id")[:1]),
        )
        .order_by("code")
    )
    devices = {d.window_id: d for d in Device.objects.filter(branch_id__in=branches)
               .select_related("agent")}  # fmt: skip
    last = {
        w.pk: LastRating(w.last_time, w.last_score, w.last_staff or "")
        for w in windows
        if w.last_time is not None
    }
    wanted = {d.staff_id for d in devices.values() if d.staff_id}
    wanted |= {r.staff_id for r in last.values() if r.staff_id}
    names = dict(Staff.objects.filter(staff_id__in=wanted).values_list("staff_id", "name"))
    groups: dict[int, list[Tile]] = {}
    for w in windows:
        d, r = devices.get(w.pk), last.get(w.pk)
        state = _window_state(d, now)
        staff = (d.staff_id if d is not None else None) or (r.staff_id if r else "") or ""
        seen = _seen(d) if d is not None and state == "offline" else None
        rated = names.get(r.staff_id, r.staff_id) if r is not None else ""
        groups.setdefault(w.branch_id, []).append(
            Tile(w, state, d.serial if d else "", names.get(staff, staff), r, rated, seen)
        )
    return [{"branch": b, "tiles": groups[pk]} for pk, b in branches.items() if pk in groups]


def _today_figures(node: Node) -> dict[str, Any]:
    """Today's figures of the subtree: what the report shows for the "today" preset."""
    period = Period(*PRESETS["today"][2](today()), preset="today")
    return reports.total(reports.Scope(node, period.since, period.until)).stats()


def _ticker(branches: dict[int, Node]) -> list[dict[str, Any]]:
    """Today's alerts of the subtree (not digests), newest first, at most ``TICKER``."""
    period_start = Period(*PRESETS["today"][2](today())).since
    alerts = list(
        Alert.objects.filter(branch_id__in=branches, digest=False, created_at__gte=period_start)
        .select_related("rule", "window")
        .order_by("-created_at", "-id")[:TICKER]
    )
    names = dict(Staff.objects.filter(staff_id__in={a.staff_id for a in alerts if a.staff_id})
                 .values_list("staff_id", "name"))  # fmt: skip
    return [
        {
            "alert": a,
            "branch": branches[a.branch_id].name if a.branch_id in branches else "",
            "window": a.window.name if a.window else "",
            "staff": names.get(a.staff_id, "") if a.staff_id else "",
            "text": a.title(),
        }
        for a in alerts
    ]


def _latest(branches: dict[int, Node], now: datetime, count: int) -> list[dict[str, Any]]:
    # the latest of the last day (one partition, the (branch, time) index; an unbounded
    # "latest 20" would sort every rating of the subtree)
    rows = list(Rating.objects.filter(branch_id__in=branches, window__isnull=False,
                                      time__gte=now - timedelta(days=1))
                .select_related("window").order_by("-time")[:count])  # fmt: skip
    names = dict(Staff.objects.filter(staff_id__in={r.staff_id for r in rows if r.staff_id})
                 .values_list("staff_id", "name"))  # fmt: skip
    return [
        {
            "rating": r,
            "branch": branches[r.branch_id].name if r.branch_id in branches else "",
            "window": r.window.name if r.window else "",
            "staff": names.get(r.staff_id or "", r.staff_id or ""),
            "flags": flag_labels.labels(r.flags),
        }
        for r in rows
    ]


def _context(node: Node, kiosk: bool) -> dict[str, Any]:
    now = timezone.now()
    branches = _branches(node)
    groups = _tiles(branches, now)
    return {
        "node": node,
        "kiosk": kiosk,
        "groups": groups,
        "grouped": len(groups) > 1 or node.pk not in {g["branch"].pk for g in groups},
        "today": _today_figures(node),
        "ticker": _ticker(branches),
        "latest": _latest(branches, now, LATEST_KIOSK if kiosk else LATEST),
        "min_n": reports.MIN_N,
        "ticker_max": TICKER,
        "latest_max": LATEST_KIOSK if kiosk else LATEST,
    }


def _kiosk(request: HttpRequest) -> bool:
    return request.GET.get("kiosk", "") not in ("", "0")


@roles(*READERS)
@require_GET
def live(request: HttpRequest, code: str, kiosk: bool = False) -> HttpResponse:
    node = scoped_node(request, code)
    kiosk = kiosk or _kiosk(request)
    context = _context(node, kiosk)
    context.update({
        "layout": "web/wall_base.html" if kiosk else "web/base.html",
        "time_zone": str(reports.TZ),
        "words": {"states": {k: str(v) for k, v in STATES.items()},
                  "link": {k: str(v) for k, v in LINK.items()},
                  "last_seen": str(_("last seen"))},
        "crumbs": [] if kiosk else _breadcrumbs(request, node),
    })  # fmt: skip
    return render(request, "web/live.html", context)


def wall(request: HttpRequest, code: str) -> HttpResponse:
    """The kiosk layout at its own address (``/wall/<node>/``)."""
    return live(request, code, kiosk=True)


@roles(*READERS)
@require_GET
def live_state(request: HttpRequest, code: str) -> HttpResponse:
    """The page's dynamic parts, rendered: ``?only=today`` (after new ratings) gives the
    figures alone."""
    node = scoped_node(request, code)
    kiosk = _kiosk(request)
    if request.GET.get("only") == "today":
        parts = {"kpis": {"today": _today_figures(node), "min_n": reports.MIN_N}}
    else:
        context = _context(node, kiosk)
        parts = {"kpis": context, "tiles": context, "ticker": context, "latest": context}
    out = {name: render_to_string(f"web/wall_{name}.html", ctx, request)
           for name, ctx in parts.items()}  # fmt: skip
    response = JsonResponse(out)
    response["Cache-Control"] = "no-store"
    return response


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
    style = Style(tuple((name, flag_labels.label(name)) for name in flag_labels.LABELS),
                  staff_names=True)  # fmt: skip
    kinds = ("rating", "device", "alert")
    return open_stream(user=user_of(request).pk, node=node, seconds=seconds, kinds=kinds,
                       style=style)  # fmt: skip
