"""The audit log page: every entry of the caller's part of the organisation (an admin of the
whole organisation: all), newest first or as asked, filtered by action, user and dates,
paged with the count; actions and details in the reader's words (``audit.actions``)."""

from __future__ import annotations

import ast
import contextlib
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from ..alerts.models import Rule
from ..audit import actions
from ..audit.models import AuditEntry
from ..casework.models import Step
from . import paging
from .access import ADMINS, get_role, roles

SORTS = {
    "-at": ("-at", "-id"),
    "at": ("at", "id"),
    "user": ("username", "-at", "-id"),
    "action": ("action", "-at", "-id"),
}
SORT_LABELS = {
    "-at": gettext_lazy("newest first"),
    "at": gettext_lazy("oldest first"),
    "user": gettext_lazy("by user"),
    "action": gettext_lazy("by action"),
}
# what was acted on (``AuditEntry.object_type``: the model's class name)
OBJECTS = {
    "Alert": gettext_lazy("alert"),
    "Appeal": gettext_lazy("appeal"),
    "Case": gettext_lazy("case"),
    "Rule": gettext_lazy("alert rule"),
    "User": gettext_lazy("user"),
    "ApiToken": gettext_lazy("API token"),
    "AgentKey": gettext_lazy("agent key"),
    "Policy": gettext_lazy("loop rules"),
    "ReturnVisit": gettext_lazy("return visit"),
    "SurveyImport": gettext_lazy("survey"),
    "CalendarDay": gettext_lazy("calendar day"),
}


# details whose values are identifiers of the code: their words
VALUES: dict[str, dict[str, Any]] = {"channel": dict(Step.CHANNELS), "kind": dict(Rule.KINDS)}


def entries(request: HttpRequest) -> tuple[QuerySet[AuditEntry], dict[str, str]]:
    """The caller's entries under the query's filters (``action``, ``user``, ``since``,
    ``until``), sorted (``sort``); and the filters as understood."""
    role = get_role(request)
    rows = AuditEntry.objects.select_related("user")
    if role.node.parent_id is not None:  # a subtree's admin: entries of that subtree
        rows = rows.filter(node_path__startswith=role.node.path)
    g = request.GET
    shown = {
        "action": paging.choice(request, "action", actions.ACTIONS),
        "user": g.get("user", "").strip()[:150],
        "since": g.get("since", "").strip()[:10],
        "until": g.get("until", "").strip()[:10],
        "sort": paging.choice(request, "sort", SORTS, "-at"),
    }
    if shown["action"]:
        rows = rows.filter(action=shown["action"])
    if shown["user"]:
        rows = rows.filter(username=shown["user"])
    rows = paging.between(rows, "at", shown["since"], shown["until"])
    return rows.order_by(*SORTS[shown["sort"]]), shown


def _detail(entry: AuditEntry) -> list[tuple[str, str]]:
    """The entry's details in words; a value kept as a dict's text (``record`` keeps what is
    not a number as text) is read back as the dict."""
    detail: dict[str, Any] = {}
    for key, value in entry.detail.items():
        if isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
                value = ast.literal_eval(value)
        detail[key] = VALUES.get(key, {}).get(value, value) if isinstance(value, str) else value
    return actions.details(detail)


@roles(*ADMINS)
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    rows, shown = entries(request)
    page, per = paging.page_of(request, rows)
    for e in page.object_list:
        e.label = actions.label(e.action)  # type: ignore[attr-defined]
        e.what = str(OBJECTS.get(e.object_type, e.object_type))  # type: ignore[attr-defined]
        e.details = _detail(e)  # type: ignore[attr-defined]
    filters = [(k, v) for k, v in shown.items() if v and not (k == "sort" and v == "-at")]
    return render(request, "web/audit.html", {
        "entries": page.object_list, "page": page, "per": per, "per_choices": paging.PER_PAGE,
        "shown": shown, "query": urlencode([*filters, ("per", per)]),
        "action_choices": [(k, str(v)) for k, v in actions.ACTIONS.items()],
        "sort_labels": SORT_LABELS,
    })  # fmt: skip
