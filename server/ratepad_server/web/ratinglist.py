"""The ratings list: filtered (score, flag, prompted, as well as the period, window and staff
member of the report's scope), sorted and paged on the server, with the count — never cut
silently. The exports read the same filters through ``filtered``, so that a download holds
exactly the rows the list pages through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import BadRequest
from django.core.paginator import Page
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ratepad.flags import BY_NAME, RatingFlags, names

from ..ingest.models import Rating
from ..org.models import Window
from ..reports import service as reports
from . import flag_labels, paging

PER_PAGE = paging.PER_PAGE
SORTS = {
    "-time": ("-time", "-id"),
    "time": ("time", "id"),
    "score": ("score", "-time", "-id"),
    "-score": ("-score", "-time", "-id"),
}
SORT_LABELS = {
    "-time": gettext_lazy("newest first"),
    "time": gettext_lazy("oldest first"),
    "score": gettext_lazy("lowest score first"),
    "-score": gettext_lazy("highest score first"),
}
PROMPTED = {"yes": gettext_lazy("prompted"), "no": gettext_lazy("without a prompt")}


@dataclass(frozen=True)
class Filters:
    scores: tuple[int, ...] = ()
    flag: str = ""
    prompted: str = ""  # "", "yes" or "no"
    sort: str = "-time"

    def query(self) -> list[tuple[str, str]]:
        """The filters as URL pairs (the pager and the exports carry them)."""
        pairs = [("score", str(s)) for s in self.scores]
        pairs += [(k, v) for k, v in (("flag", self.flag), ("prompted", self.prompted)) if v]
        return [*pairs, ("sort", self.sort)] if self.sort != "-time" else pairs


def parse_filters(request: HttpRequest) -> Filters:
    g = request.GET
    try:
        scores = tuple(sorted({int(s) for s in g.getlist("score") if s}))
    except ValueError:
        raise BadRequest(_("score: whole numbers from 1 to 9")) from None
    if any(not 1 <= s <= 9 for s in scores):
        raise BadRequest(_("score: whole numbers from 1 to 9"))
    flag, prompted, sort = g.get("flag", ""), g.get("prompted", ""), g.get("sort", "-time")
    if flag and flag not in BY_NAME:
        raise BadRequest(_("flag: one of %(names)s") % {"names": ", ".join(BY_NAME)})
    if prompted not in ("", *PROMPTED):
        raise BadRequest(_("prompted: yes or no"))
    if sort not in SORTS:
        raise BadRequest(_("sort: one of %(names)s") % {"names": ", ".join(SORTS)})
    return Filters(scores, flag, prompted, sort)


def filtered(scope: reports.Scope, filters: Filters) -> QuerySet[Rating]:
    """The scope's stored ratings (quarantined ones have no window) under ``filters``, sorted."""
    q = scope.filter(
        Rating.objects.filter(time__gte=scope.since, time__lt=scope.until, window__isnull=False)
    )
    if filters.scores:
        q = q.filter(score__in=filters.scores)
    if filters.flag:
        q = q.annotate(_flag=F("flags").bitand(BY_NAME[filters.flag].bit)).filter(_flag__gt=0)
    if filters.prompted:
        unprompted = F("flags").bitand(int(RatingFlags.UNPROMPTED))
        q = q.annotate(_unprompted=unprompted).filter(
            **({"_unprompted": 0} if filters.prompted == "yes" else {"_unprompted__gt": 0})
        )
    return q.order_by(*SORTS[filters.sort])


def rows(scope: reports.Scope, ratings: Any) -> list[dict[str, Any]]:
    """What the list, the exports and the appeal box read of each rating."""
    codes = dict(Window.objects.filter(branch__path__startswith=scope.node.path)
                 .values_list("pk", "code"))  # fmt: skip
    return [{"time": r.time, "serial": r.serial, "journal_seq": r.journal_seq,
             "window": codes.get(r.window_id or 0, ""), "staff_id": r.staff_id,
             "score": r.score, "level_value": r.level_value,
             "flags": flag_labels.labels(r.flags), "flag_names": names(r.flags),
             "prompted": not r.flags & RatingFlags.UNPROMPTED}
            for r in ratings]  # fmt: skip


def page_of(request: HttpRequest, q: QuerySet[Rating]) -> tuple[Page[Rating], int]:
    """The requested page (``?page=``, ``?per=`` one of ``PER_PAGE``) and the page size."""
    return paging.page_of(request, q, PER_PAGE)
