"""What the pages, the API and the exports share: importing a survey's responses, finding the
survey of a node and period, and counting return visits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ratepad.survey import SurveyDefinition as Definition
from ratepad.survey import analyse, loads_definition, parse_responses

from ..alerts.models import Alert
from ..ingest.models import Rating
from ..org.access import NotFound
from ..org.models import Node
from .models import (
    RETURN_VISIT_DUE,
    ReturnVisit,
    SurveyDefinition,
    SurveyImport,
    SurveyResponse,
)

MAX_RESPONDENTS = 50_000


@dataclass(frozen=True)
class Imported:
    survey: SurveyImport
    definition: Definition


def import_survey(
    *,
    definition_text: str,
    definition_kind: str,
    responses_text: str,
    node: Node,
    user: User | None,
    file_name: str = "",
    first: date | None = None,
    last: date | None = None,
) -> Imported:
    """Check the definition and every cell of the responses, compute the report and store the
    three together (or nothing: SurveyFormatError/SurveyImportError with every bad cell)."""
    from ratepad.errors import SurveyFormatError

    d = loads_definition(definition_text, definition_kind, "definition")
    d = d.with_overrides(node=node.code, first=first, last=last)
    if d.first is None or d.last is None:
        raise SurveyFormatError("definition: give the period (first and last day)")
    responses = parse_responses(d, responses_text, source=file_name or "responses",
                                max_rows=MAX_RESPONDENTS)  # fmt: skip
    report = analyse(d, responses)
    with transaction.atomic():
        definition = SurveyDefinition.objects.create(name=d.name, spec=d.source, created_by=user)
        survey = SurveyImport.objects.create(
            definition=definition, node=node, first=d.first, last=d.last, file_name=file_name,
            respondents=len(responses.rows), report=report, created_by=user,
        )  # fmt: skip
        rows = [[rid[:64], *row] for rid, row in zip(responses.respondents, responses.rows,
                                                      strict=True)]  # fmt: skip
        block = SurveyResponse.BLOCK
        SurveyResponse.objects.bulk_create(
            SurveyResponse(survey=survey, first_row=i + 1, rows=rows[i : i + block])
            for i in range(0, len(rows), block)
        )
    return Imported(survey, d)


def survey_in(node: Node, first: date, last: date) -> SurveyImport | None:
    """The latest survey of this node whose period ends inside [first, last]."""
    return (
        SurveyImport.objects.filter(node=node, last__gte=first, last__lte=last)
        .select_related("definition")
        .order_by("-last", "-pk")
        .first()
    )


def surveys_of(nodes_path: str) -> QuerySet[SurveyImport]:
    return SurveyImport.objects.filter(node__path__startswith=nodes_path).select_related("node")


def compare(now: dict[str, Any] | None, then: dict[str, Any] | None) -> dict[str, Any] | None:
    """The change of a mean-like figure (NPS in points, CES) against another survey's, when both
    are shown (n at least the minimum)."""
    if not now or not then or now.get("small") or then.get("small"):
        return None
    key = "nps" if "nps" in now else "mean"
    return {"then": then[key], "diff": now[key] - then[key], "n": then["n"]}


def visits_of(path: str, since: datetime, until: datetime) -> QuerySet[ReturnVisit]:
    return (
        ReturnVisit.objects.filter(
            branch__path__startswith=path, contacted_at__gte=since, contacted_at__lt=until
        )
        .select_related("branch", "contacted_by", "alert")
        .order_by("-contacted_at", "-pk")
    )


def visit_counts(visits: Iterable[ReturnVisit]) -> list[dict[str, Any]]:
    """Per node: return visits, on time, the on-time rate, reached or resolved, and the mean
    stated satisfaction after the visit (with its n)."""
    by: dict[int, dict[str, Any]] = {}
    for v in visits:
        c = by.setdefault(v.branch_id, {"code": v.branch.code, "name": v.branch.name,
                                        "visits": 0, "on_time": 0, "reached": 0,
                                        "satisfaction": [], })  # fmt: skip
        c["visits"] += 1
        c["on_time"] += v.on_time
        c["reached"] += v.outcome in (ReturnVisit.REACHED, ReturnVisit.RESOLVED)
        if v.satisfaction_after is not None:
            c["satisfaction"].append(v.satisfaction_after)
    out = []
    for c in sorted(by.values(), key=lambda c: c["code"]):
        sat = c.pop("satisfaction")
        out.append({**c, "on_time_rate": c["on_time"] / c["visits"] if c["visits"] else None,
                    "satisfaction_n": len(sat),
                    "satisfaction_mean": sum(sat) / len(sat) if sat else None})  # fmt: skip
    return out


@dataclass(frozen=True)
class Origin:
    """What a return visit follows up: a rating or an alert, in a branch."""

    branch: Node
    since: datetime
    alert: Alert | None = None
    serial: str = ""
    journal_seq: int | None = None
    score: int | None = None


def origin_of(
    scope: Node, *, alert: int | None = None, serial: str = "", seq: int | None = None
) -> Origin:
    """The alert ``alert`` or the rating (``serial``, ``seq``) inside ``scope``'s subtree;
    NotFound for one that does not exist there, ValueError when neither is named."""
    if alert is not None:
        a = Alert.objects.select_related("branch").filter(pk=alert).first()
        if a is None or not a.branch.path.startswith(scope.path):
            raise NotFound(_("no such alert"))
        return Origin(a.branch, a.created_at, a, a.serial, a.journal_seq)
    if serial and seq is not None:
        r = Rating.objects.filter(serial=serial, journal_seq=seq, branch__isnull=False).first()
        branch = Node.objects.filter(pk=r.branch_id or 0).first() if r else None
        if r is None or branch is None or not branch.path.startswith(scope.path):
            raise NotFound(_("no such rating"))
        return Origin(branch, r.time, None, r.serial, r.journal_seq, r.score)
    raise ValueError(_("a return visit follows up a rating or an alert"))


def record_visit(origin: Origin, visit: ReturnVisit, user: User | None) -> ReturnVisit:
    """Fill a return visit's origin, due time and author, and store it."""
    visit.branch = origin.branch
    visit.alert = origin.alert
    visit.serial = origin.serial or ""
    visit.journal_seq = origin.journal_seq
    visit.score = origin.score
    visit.since = origin.since
    visit.due_at = origin.since + RETURN_VISIT_DUE
    visit.contacted_by = user
    visit.full_clean()
    visit.save()
    return visit


def load_demo_surveys(node: Node, seed: int = 1, respondents: int = 400) -> None:
    """The example survey answered by generated respondents for the last four weeks and the
    four before (the demo's survey report then has its 环比)."""
    from datetime import timedelta

    from ratepad.survey import example_definition, example_path, generate_csv

    from ..reports.service import TZ

    today = datetime.now(TZ).date()
    text = example_path().read_text(encoding="utf-8")
    for weeks_back, offset in ((0, 0), (4, 1)):
        last = today - timedelta(days=1 + 28 * weeks_back)
        import_survey(definition_text=text, definition_kind="toml", node=node, user=None,
                      responses_text=generate_csv(example_definition(), respondents,
                                                  seed + offset),
                      file_name="demo.csv", first=last - timedelta(days=27), last=last)  # fmt: skip
