"""The survey pages: a questionnaire's reliability (Cronbach's alpha of an uploaded score table),
importing a survey's responses against its definition, the survey report of a node and period
(gaps with intervals and the zone of tolerance, NPS/CES with 环比/同比, importance-performance,
alpha per dimension) with its exports, and return visits (回访): listed and counted per node,
created from a bad rating or an alert."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from ratepad.errors import RatepadError
from ratepad.survey import SurveyImportError
from ratepad.surveys import ScoreTable, parse_scores_csv, survey_report

from ..alerts.models import Alert
from ..audit.log import record
from ..dbrouter import reads_from_replica
from ..org.access import NotFound
from ..org.models import Node
from ..surveys import service
from ..surveys.models import BAD_SCORE, RETURN_VISIT_DUE, ReturnVisit, SurveyImport
from . import exports
from .access import ACTORS, READERS, get_role, roles, scoped_node, user_of
from .period import parse_period

# an upload is analysed inside the request (the statistics grow with items² × respondents):
# bounded so that one file holds a worker thread for seconds, not minutes
SURVEY_MAX_BYTES = 5 * 1024 * 1024
SURVEY_MAX_LINES = 50_000
SURVEY_MAX_RESPONDENTS, SURVEY_MAX_ITEMS = 10_000, 60
IMPORT_MAX_BYTES = 20 * 1024 * 1024  # responses to a survey: 50,000 respondents × 60 answers


def _too_big(request: HttpRequest, limit: int) -> bool:
    """Judged on the request's length, before Django parses the multipart body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > limit + 64 * 1024  # the form's other fields and boundaries


def _imports(request: HttpRequest) -> list[SurveyImport]:
    return list(service.surveys_of(get_role(request).node.path)[:50])


def _nodes(request: HttpRequest) -> list[Node]:
    return list(Node.objects.filter(path__startswith=get_role(request).node.path)
                .order_by("path"))  # fmt: skip


@roles(*READERS)
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest) -> HttpResponse:
    """GET: the forms and the imported surveys. POST: a score table's alpha (a file alone, as
    ever), or with ``definition`` a survey's responses to import."""
    context: dict[str, Any] = {"imports": _imports(request), "nodes": _nodes(request)}
    if request.method == "POST":
        if request.GET.get("import") or "definition" in request.FILES:
            return _import(request, context)
        too_big = _("The file is larger than %(mb)d MB.") % {"mb": SURVEY_MAX_BYTES >> 20}
        big = _too_big(request, SURVEY_MAX_BYTES)
        upload = None if big else request.FILES.get("file")
        if upload is None:
            context["error"] = too_big if big else _("Choose a CSV file.")
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


def _import(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    errors: list[str] = []
    if _too_big(request, IMPORT_MAX_BYTES):
        errors.append(_("The files are larger than %(mb)d MB.") % {"mb": IMPORT_MAX_BYTES >> 20})
        context["import_errors"] = errors
        return render(request, "web/survey.html", context, status=413)
    definition = request.FILES.get("definition")
    responses = request.FILES.get("responses")
    code = request.POST.get("node", "")
    if definition is None or responses is None:
        errors.append(_("Choose the survey's definition and its responses."))
    node = None
    try:
        node = scoped_node(request, code) if code else None
    except PermissionDenied:
        errors.append(_("No such node here."))
    if node is None and not errors:
        errors.append(_("Choose a node."))
    if not errors and definition is not None and responses is not None and node is not None:
        try:
            kind = "json" if (definition.name or "").lower().endswith(".json") else "toml"
            imported = service.import_survey(
                definition_text=definition.read().decode("utf-8-sig"), definition_kind=kind,
                responses_text=responses.read().decode("utf-8-sig"), node=node,
                user=user_of(request), file_name=responses.name or "",
            )  # fmt: skip
            record(request, "survey.import", imported.survey, node_path=node.path,
                   name=responses.name, respondents=imported.survey.respondents)  # fmt: skip
            s = imported.survey
            url = reverse("web:survey_report", args=[node.code])
            return HttpResponseRedirect(f"{url}?since={s.first}&until={s.last}")
        except UnicodeDecodeError:
            errors.append(_("The file is not UTF-8 text."))
        except SurveyImportError as exc:
            errors.extend(exc.errors)
            if exc.total > len(exc.errors):
                errors.append(_("… and %(n)d more") % {"n": exc.total - len(exc.errors)})
        except RatepadError as exc:
            errors.append(str(exc))
    context["import_errors"] = errors
    return render(request, "web/survey.html", context, status=400)


# -- the survey report ---------------------------------------------------------------------------
def survey_context(node: Node, first: Any, last: Any, previous: Any, year: Any) -> dict[str, Any]:
    """The survey of a node and period with NPS/CES against the previous period's and last
    year's surveys (each None when there is none)."""
    s = service.survey_in(node, first, last)
    out: dict[str, Any] = {"survey": s, "report": s.report if s else None}
    if s is not None:
        before = {"previous": service.survey_in(node, previous.first, previous.last),
                  "year": service.survey_in(node, year.first, year.last)}  # fmt: skip
        out["compare"] = {
            key: {
                "survey": other,
                "nps": service.compare(s.report["nps"], other.report["nps"]) if other else None,
                "ces": service.compare(s.report["ces"], other.report["ces"]) if other else None,
            }
            for key, other in before.items()
        }
    return out


def _chart(report: dict[str, Any]) -> dict[str, Any]:
    """What survey.js draws: per dimension the gap with its interval and the zone of tolerance
    (adequate .. desired means) against perception; the importance-performance grid."""
    dims = []
    for d in report["dimensions"]:
        gap = d["gap"] if d["gap"] and not d["gap"]["small"] else None
        m = d["means"]
        show = {k: m[k]["mean"] for k in ("adequate", "desired", "perception", "expectation")
                if m.get(k) and not m[k]["small"]}  # fmt: skip
        dims.append({"name": _dimension(d["name"]), "gap": gap and gap["mean"],
                     "lo": gap and gap["ci"][0], "hi": gap and gap["ci"][1], **show})  # fmt: skip
    ipa = report["ipa"]
    return {
        "dimensions": dims,
        "ipa": None if ipa is None else {
            "points": [{"name": _dimension(p["name"]), "x": p["performance"],
                        "y": p["importance"]} for p in ipa["points"]],
            "x": ipa["performance_mean"], "y": ipa["importance_mean"],
        },
        "labels": {"gap": _("Gap (P - E)"), "zone": _("Zone of tolerance"),
                   "perception": _("Perception"), "performance": _("Performance"),
                   "importance": _("Importance")},
    }  # fmt: skip


DIMENSION_NAMES = {
    "tangibles": gettext_lazy("Tangibles"),
    "reliability": gettext_lazy("Reliability"),
    "responsiveness": gettext_lazy("Responsiveness"),
    "assurance": gettext_lazy("Assurance"),
    "empathy": gettext_lazy("Empathy"),
}


def _dimension(name: str) -> str:
    return str(DIMENSION_NAMES.get(name, name))


@roles(*READERS)
@require_GET
@reads_from_replica
def node_survey(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_period(request)
    context = survey_context(node, period.first, period.last, period.previous(),
                             period.year_before())  # fmt: skip
    report = context["report"]
    if report is not None:
        for d in report["dimensions"]:
            d["label"] = _dimension(d["name"])
        context["chart"] = _chart(report)
    context.update({"node": node, "period": period})
    return render(request, "web/survey_report.html", context)


SECTIONS = {  # a survey export's sections as the survey report names them
    "gap": gettext_lazy("Gap (perception − expectation)"),  # noqa: RUF001  (the page's words)
    "adequacy": gettext_lazy("Adequacy (perception − adequate)"),  # noqa: RUF001
    "superiority": gettext_lazy("Superiority (perception − desired)"),  # noqa: RUF001
    "zone_of_tolerance": gettext_lazy("Inside the zone of tolerance"),
    "alpha": "α",
    "item_gap": gettext_lazy("Gaps by item"),
    "nps": "NPS",
    "ces": "CES",
    "overall": gettext_lazy("Overall satisfaction"),
    "ipa_stated": gettext_lazy("Importance–performance"),
    "ipa_derived": gettext_lazy("Importance–performance"),
}
QUADRANTS = {
    "concentrate": gettext_lazy("concentrate here"),
    "keep_up": gettext_lazy("keep up the good work"),
    "low_priority": gettext_lazy("low priority"),
    "overkill": gettext_lazy("possible overkill"),
}


FIGURE_NAMES = {"overall": gettext_lazy("Overall satisfaction"), "all": gettext_lazy("all")}


def _figure_name(name: str) -> str:
    """A figure's name in an export: a dimension's or a whole-survey figure's label; an item's
    attribute as its survey names it."""
    label = FIGURE_NAMES.get(name) or DIMENSION_NAMES.get(name)
    return name if label is None else str(label)


def _small_or_quadrant(value: Any) -> str:
    """The last column: below the minimum n (yes/no), or an IPA point's quadrant."""
    if isinstance(value, bool):
        return str(exports.YES_NO[value])
    return str(QUADRANTS.get(value, value))


SURVEY_COLUMNS = [
    exports.Column("section", gettext_lazy("Section"), show=lambda v: str(SECTIONS.get(v, v))),
    exports.Column("name", gettext_lazy("Name"), show=_figure_name),
    exports.Column("n", "n", "int"),
    exports.Column("value", gettext_lazy("Value"), "num"),
    exports.Column("ci_lo", gettext_lazy("95% CI from"), "num"),
    exports.Column("ci_hi", gettext_lazy("95% CI to"), "num"),
    exports.Column("small", gettext_lazy("too few answers"), show=_small_or_quadrant),
]


def survey_table(report: dict[str, Any]) -> list[list[Any]]:
    """A survey report as rows: one per figure (its n, value, interval, below the minimum n);
    an importance–performance point: performance, importance and its quadrant."""
    rows: list[list[Any]] = []

    def add(section: str, name: str, f: dict[str, Any] | None, key: str = "mean") -> None:
        if f is None:
            return
        ci = f.get("ci") or (None, None)
        rows.append([section, name, f["n"], f[key], ci[0], ci[1], f["small"]])

    for d in report["dimensions"]:
        add("gap", d["name"], d["gap"])
        add("adequacy", d["name"], d["msa"])
        add("superiority", d["name"], d["mss"])
        add("zone_of_tolerance", d["name"], d["zone"], "inside")
        add("alpha", d["name"], d["alpha"], "alpha")
    for it in report["items"]:
        add("item_gap", it["attribute"], it.get("gap"))
    add("nps", "NPS", report["nps"], "nps")
    add("ces", "CES", report["ces"])
    add("overall", "overall", report["overall"])
    add("alpha", "all", report["alpha"], "alpha")
    if report["ipa"]:
        for p in report["ipa"]["points"]:
            rows.append([f"ipa_{report['ipa']['source']}", p["name"], p["n"], p["performance"],
                         p["importance"], None, p["quadrant"]])  # fmt: skip
    return rows


@roles(*READERS)
@require_GET
@reads_from_replica
def survey_export(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    def sheet() -> exports.Sheet:
        node = scoped_node(request, code)
        period = parse_period(request)
        s = service.survey_in(node, period.first, period.last)
        if s is None:
            raise Http404(_("No survey of this node in this period."))
        about = exports.covers(node, period, None, (gettext_lazy("Survey"), s.report["name"]),
                               (gettext_lazy("respondents"), s.respondents))  # fmt: skip
        return exports.Sheet(f"survey-{node.code}-{s.last}", gettext_lazy("Survey"),
                             SURVEY_COLUMNS, survey_table(s.report), about)  # fmt: skip

    return exports.export(request, code, fmt, "export.survey", sheet)


# -- return visits -------------------------------------------------------------------------------
class ReturnVisitForm(forms.ModelForm[ReturnVisit]):
    contacted_at = forms.DateTimeField(
        label=gettext_lazy("contacted at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = ReturnVisit
        fields = ["contacted_at", "channel", "outcome", "satisfaction_after", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 3, "maxlength": 1000})}


def _origin(request: HttpRequest, node: Node) -> service.Origin:
    """The rating (``serial`` and ``seq``) or the alert (``alert``) a return visit follows up,
    inside the node's subtree."""
    params = request.POST if request.method == "POST" else request.GET
    try:
        alert = int(params["alert"]) if params.get("alert") else None
        seq = int(params["seq"]) if params.get("seq") else None
    except ValueError:
        raise BadRequest(_("alert and seq: whole numbers")) from None
    try:
        return service.origin_of(node, alert=alert, serial=params.get("serial", ""), seq=seq)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


@roles(*ACTORS)
@require_http_methods(["GET", "POST"])
def returnvisit_new(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    origin = _origin(request, node)
    if request.method == "POST":
        form = ReturnVisitForm(request.POST)
        if form.is_valid():
            visit = service.record_visit(origin, form.save(commit=False), user_of(request))
            record(request, "returnvisit.create", visit, node_path=visit.branch.path,
                   channel=visit.channel, outcome=visit.outcome)  # fmt: skip
            return HttpResponseRedirect(reverse("web:returnvisits", args=[node.code]))
        status = 400
    else:
        form = ReturnVisitForm(initial={"contacted_at": timezone.localtime().replace(
            second=0, microsecond=0, tzinfo=None)})  # fmt: skip
        status = 200
    return render(request, "web/returnvisit_new.html",
                  {"node": node, "origin": origin, "form": form,
                   "due_at": origin.since + RETURN_VISIT_DUE}, status=status)  # fmt: skip


def _visits(request: HttpRequest, code: str) -> tuple[Node, Any, list[ReturnVisit]]:
    node = scoped_node(request, code)
    period = parse_period(request)
    visits = list(service.visits_of(node.path, period.since, period.until)[:2000])
    return node, period, visits


@roles(*READERS)
@require_GET
@reads_from_replica
def returnvisits(request: HttpRequest, code: str) -> HttpResponse:
    node, period, visits = _visits(request, code)
    # the alerts of the period a return visit may follow up (actors start one from here)
    alerts = list(Alert.objects.filter(branch__path__startswith=node.path,
                                       created_at__gte=period.since, created_at__lt=period.until)
                  .select_related("branch").order_by("-created_at")[:50])  # fmt: skip
    return render(request, "web/returnvisits.html", {
        "alerts": alerts, "can_act": get_role(request).role in ACTORS,
        "node": node, "period": period, "visits": visits[:500],
        "counts": service.visit_counts(visits),
        "due_hours": int(RETURN_VISIT_DUE.total_seconds() // 3600),
    })  # fmt: skip


def _choice(choices: list[tuple[str, Any]]) -> Any:
    labels = dict(choices)
    return lambda v: str(labels.get(v, v))


VISIT_COLUMNS = [
    exports.Column("branch", gettext_lazy("Branch")),
    exports.Column("contacted_at", gettext_lazy("Contacted at"), "datetime"),
    exports.Column("since", gettext_lazy("Follows up"), "datetime"),
    exports.Column("due_at", gettext_lazy("due"), "datetime"),
    exports.Column("on_time", gettext_lazy("On time"), "bool"),
    exports.Column("channel", gettext_lazy("Channel"), show=_choice(ReturnVisit.CHANNELS)),
    exports.Column("outcome", gettext_lazy("Outcome"), show=_choice(ReturnVisit.OUTCOMES)),
    exports.Column("satisfaction_after", gettext_lazy("Satisfaction after"), "int"),
    exports.Column("serial", gettext_lazy("Keypad")),
    exports.Column("journal_seq", gettext_lazy("Journal number"), "int"),
    exports.Column("score", gettext_lazy("Score"), "int"),
    exports.Column("alert", gettext_lazy("Alert"), "int"),
    exports.Column("contacted_by", gettext_lazy("Contacted by")),
    exports.Column("note", gettext_lazy("Staff note")),
]


@roles(*READERS)
@require_GET
@reads_from_replica
def returnvisits_export(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    def sheet() -> exports.Sheet:
        node, period, visits = _visits(request, code)
        rows = [[v.branch.code, v.contacted_at, v.since, v.due_at, v.on_time, v.channel,
                 v.outcome, v.satisfaction_after, v.serial, v.journal_seq, v.score, v.alert_id,
                 v.contacted_by.username if v.contacted_by else "", v.note]
                for v in visits]  # fmt: skip
        about = exports.covers(node, period, None, (gettext_lazy("Visits"), len(rows)))
        return exports.Sheet(f"return-visits-{node.code}", gettext_lazy("Return visits"),
                             VISIT_COLUMNS, rows, about)  # fmt: skip

    return exports.export(request, code, fmt, "export.returnvisits", sheet)


BAD = BAD_SCORE  # the ratings page offers a return visit at or below this score
