"""The printable monthly report of a node (``/report/NODE/monthly.pdf?month=YYYY-MM``): A4
pages in the reader's language only, drawn with reportlab.

Page 1: the month's figures (n, index, CSAT with its interval, 参评率) against the previous
month (环比) and the same month a year before (同比), each change tested and said significant or
not; the daily index and the daily number of ratings by date, customers per hour of day.
Then the units of the node (child nodes or windows; at a branch its staff members too) ranked
with their significance badges — the report page's own computation (``web.units``) — or, above
the branches, the windows and staff members significantly below their branch; the month's
alerts and appeals; the 好差评 loop (``casework.pdf``) and the survey (``surveys.pdf``).

The font (``RATEPAD_PDF_FONT``, a TrueType .ttf/.ttc with Chinese characters) is embedded as a
subset, so that the PDF prints the same on any machine; without it the PDF is refused with the
reason. Names (anyone's input) are escaped where reportlab reads markup."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from ..alerts.models import RESOLVED, Alert, Appeal, Rule
from ..audit.log import record
from ..dbrouter import reads_from_replica
from ..org.models import Node
from ..reports import service as reports
from . import errors
from .access import READERS, roles, scoped_node
from .period import Period, parse_month
from .templatetags.significance import p_words
from .templatetags.web import fmt1, pct, pp
from .units import Units, report_units

log = logging.getLogger(__name__)
LISTED = 15  # alerts, appeals and units below their branch listed (the count says how many)
FONT_PREFIX = "RatepadPDF"
_fonts: dict[str, str] = {}  # font file → the name it is registered under (once per process)


class PdfFontMissing(Exception):
    """The configured font cannot be embedded (the message says which and what to do)."""


def font() -> str:
    """The name of the registered font of ``RATEPAD_PDF_FONT`` (embedded as a subset)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    path = str(settings.PDF_FONT)
    if path in _fonts:
        return _fonts[path]
    if not Path(path).is_file():
        raise PdfFontMissing(
            _("The PDF font %(path)s is missing: install the fonts-wqy-microhei package or set "
              "RATEPAD_PDF_FONT to a TrueType font with Chinese characters.") % {"path": path}
        )  # fmt: skip
    name = f"{FONT_PREFIX}{len(_fonts)}"
    try:
        pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
    except (TTFError, OSError) as exc:
        raise PdfFontMissing(
            _("The PDF font %(path)s cannot be embedded (%(why)s): set RATEPAD_PDF_FONT to a "
              "TrueType font (.ttf or .ttc) with Chinese characters.")
            % {"path": path, "why": exc}
        ) from None  # fmt: skip
    _fonts[path] = name
    return name


# -- the look ------------------------------------------------------------------------------------
HEAD_BG, TOTAL_BG, GRID = "#e8eef5", "#f2f2f2", "#9e9e9e"
BADGE_COLOURS = {"low": "#f6d5d3", "improved": "#d4eedb", "small": "#eeeeee"}  # light: printable


@dataclass(frozen=True)
class Style:
    """The PDF's font and text styles, and its one table look (every section uses them)."""

    font: str
    title: Any
    heading: Any
    body: Any
    note: Any
    cell: Any

    @classmethod
    def make(cls, font_name: str, cjk: bool) -> Style:
        """``cjk``: lines may break between any two characters (Chinese), else at spaces."""
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        def style(name: str, size: float, **kw: Any) -> ParagraphStyle:
            return ParagraphStyle(name, fontName=font_name, fontSize=size, leading=size * 1.4,
                                  wordWrap="CJK" if cjk else None, **kw)  # fmt: skip

        return cls(font_name, style("title", 17, spaceAfter=4),
                   style("heading", 12.5, spaceBefore=8, spaceAfter=4),
                   style("body", 9.5), style("note", 8, textColor=colors.HexColor("#555555")),
                   style("cell", 8))  # fmt: skip

    def text(self, text: str, style: Any = None) -> Any:
        """A paragraph of plain text (escaped: reportlab reads markup)."""
        from reportlab.platypus import Paragraph

        return Paragraph(escape(text), style or self.body)

    def table(
        self,
        rows: Sequence[Sequence[Any]],
        widths: Sequence[float] | None = None,
        *,
        numeric_from: int = 1,
        total: bool = False,
        grey: Sequence[int] = (),
        size: float = 8,
        extra: Sequence[Any] = (),
    ) -> Any:
        """A table: the first row the header (repeated on every page), columns from
        ``numeric_from`` right-aligned, the last row a total (``total``), rows ``grey`` (too
        few ratings) greyed out."""
        from reportlab.lib import colors
        from reportlab.platypus import Table, TableStyle

        head = list(rows[0])
        if widths is not None:  # columns of set widths: the header's words wrap inside them
            head = [self.text(c, self.cell) if isinstance(c, str) else c for c in head]
        body = [list(r) for r in rows[1:]]
        table = Table([head, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
        commands: list[Any] = [
            ("FONTNAME", (0, 0), (-1, -1), self.font),
            ("FONTSIZE", (0, 0), (-1, -1), size),
            ("LEADING", (0, 0), (-1, -1), size * 1.25),
            ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor(GRID)),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(HEAD_BG)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ]
        if total:
            commands.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor(TOTAL_BG)))
        commands += [("TEXTCOLOR", (0, i), (-1, i), colors.grey) for i in grey]
        table.setStyle(TableStyle([*commands, *extra]))
        return table

    def section(self, heading: str, *flowables: Any) -> list[Any]:
        return [self.text(heading, self.heading), *flowables]


BADGES = {  # the report's badges (web/_badge.html's words)
    "low": "significantly low",
    "improved": "significantly improved",
    "small": "too few ratings",
}


def badge(verdict: dict[str, Any] | None) -> str:
    key = (verdict or {}).get("badge")
    return _(BADGES[key]) if key else ""


def ci_text(ci: tuple[float, float] | None) -> str:
    return f"{pct(ci[0])}–{pct(ci[1])}" if ci else "–"


def change_words(test: dict[str, Any] | None) -> str:
    """What a change against an earlier period means (the overview's arrows in words)."""
    if test is None:
        return _("No ratings in that period: nothing to compare with.")
    if test["p"] < reports.SIGNIFICANT_P:
        word = _("significant improvement") if test["diff"] > 0 else _("significant decline")
    else:
        word = _("not significant")
    return f"{word} ({p_words(test['p'])})"


# -- the month ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Month:
    first: date
    last: date

    @property
    def period(self) -> Period:
        return Period(self.first, self.last)

    @property
    def previous(self) -> Period:
        """环比: the calendar month before."""
        last = self.first - timedelta(days=1)
        return Period(last.replace(day=1), last)

    @property
    def year_before(self) -> Period:
        """同比: the same month a year before."""
        first = self.first.replace(year=self.first.year - 1)
        return Month(first, (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)).period

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


# -- sections --------------------------------------------------------------------------------
def _summary(
    style: Style, month: Month, total: dict[str, Any], compare: dict[str, Any]
) -> list[Any]:
    from reportlab.lib.units import mm

    kpis = style.table(
        [
            [_("Ratings") + " n", _("all"), _("Satisfaction index"), "CSAT", "95% CI",
             _("Response rate"), _("Excluded (misuse)")],
            [str(total["n"]), str(total["n_all"]), fmt1(total["index"]), pct(total["csat"]),
             ci_text(total["csat_ci"]), pct(total["response_rate"]), pct(total["excluded_rate"])],
        ],
        numeric_from=0,
        size=9,
    )  # fmt: skip

    def dates(first: date, last: date) -> str:
        return f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"

    head = ["", _("Period"), "CSAT", "n", _("Difference"), "95% CI", _("Significance")]
    now = [style.text(_("This period"), style.cell), dates(month.first, month.last),
           pct(total["csat"]), str(total["n"]), "", "", ""]  # fmt: skip
    rows: list[list[Any]] = [head, now]
    names = {"previous": _("Against the previous period"),
             "last_year": _("Against the same period last year")}  # fmt: skip
    for key, label in names.items():
        c = compare[key]
        t = c["test"]
        rows.append([
            style.text(label, style.cell), dates(c["since"].date(), c["last"].date()),
            pct(c["csat"]), str(c["n"]), pp(t["diff"]) if t else "",
            f"{pp(t['ci'][0])} … {pp(t['ci'][1])}" if t else "",
            style.text(change_words(t), style.cell),
        ])  # fmt: skip
    out = [kpis, _spacer(3)]
    if total["small"]:
        out.append(style.text(_("Fewer than %(min_n)s ratings: not a verdict.")
                              % {"min_n": reports.MIN_N}, style.note))  # fmt: skip
    widths = [x * mm for x in (34, 38, 16, 12, 18, 30, 32)]
    out.append(style.table(rows, widths, numeric_from=2))
    return style.section(_("Summary"), *out)


def _spacer(height_mm: float) -> Any:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    return Spacer(1, height_mm * mm)


def _chart(style: Style, title: str, draw: Callable[[Any], None]) -> Any:
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib.units import mm

    d = Drawing(180 * mm, 52 * mm, initialFontName=style.font)  # no Helvetica: not embedded
    draw(d)
    d.add(String(0, 48 * mm, title, fontName=style.font, fontSize=9.5))
    return d


PLOT = (34, 23, 468, 102)  # a chart's plot area in points: x, y, width, height (A4's text width)


def _date_labels(days: list[date], every: int = 7) -> list[str]:
    """Dates on a daily axis: every ``every``-th day and the last, as MM-DD."""
    return [f"{d:%m-%d}" if i % every == 0 or i == len(days) - 1 else ""
            for i, d in enumerate(days)]  # fmt: skip


def _trend(style: Style, month: Month, series: list[dict[str, Any]]) -> list[Any]:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.widgets.markers import makeMarker
    from reportlab.lib import colors

    by_day = {s["day"]: s for s in series}
    days = month.days
    labels = _date_labels(days)
    # the index per day; a day without ratings is a gap in the line, not a zero
    segments: list[list[tuple[int, float]]] = [[]]
    for i, d in enumerate(days):
        value = by_day.get(d.isoformat(), {}).get("index")
        if value is None:
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((i, value))
    segments = [s for s in segments if s]

    def index_line(d: Any) -> None:
        lp = LinePlot()
        lp.x, lp.y, lp.width, lp.height = PLOT
        lp.data = segments or [[(0, 0)]]
        for i in range(len(lp.data)):
            lp.lines[i].strokeColor = colors.HexColor("#2f6fb0") if segments else colors.white
            lp.lines[i].symbol = makeMarker("FilledCircle", size=2.5)  # type: ignore[no-untyped-call]
        lp.xValueAxis.valueMin, lp.xValueAxis.valueMax = -0.5, len(days) - 0.5
        lp.xValueAxis.valueSteps = [i for i, label in enumerate(labels) if label]
        lp.xValueAxis.labelTextFormat = lambda x: labels[round(x)] if 0 <= x < len(days) else ""
        lp.yValueAxis.valueMin, lp.yValueAxis.valueMax, lp.yValueAxis.valueStep = 0, 100, 20
        for axis in (lp.xValueAxis, lp.yValueAxis):
            axis.labels.fontName, axis.labels.fontSize = style.font, 7
        d.add(lp)

    def ratings_bars(d: Any) -> None:
        bc = VerticalBarChart()
        bc.x, bc.y, bc.width, bc.height = PLOT
        bc.data = [[by_day.get(d.isoformat(), {}).get("n", 0) for d in days]]
        bc.categoryAxis.categoryNames = labels
        bc.bars[0].fillColor = colors.HexColor("#7aa974")
        bc.valueAxis.valueMin = 0
        for axis in (bc.categoryAxis, bc.valueAxis):
            axis.labels.fontName, axis.labels.fontSize = style.font, 7
        d.add(bc)

    return style.section(
        _("Trend"),
        _chart(style, _("Daily index"), index_line),
        _chart(style, _("Ratings per day"), ratings_bars),
    )


def _flow(style: Style, flow: list[float]) -> Any:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.lib import colors

    def bars(d: Any) -> None:
        bc = VerticalBarChart()
        bc.x, bc.y, bc.width, bc.height = PLOT
        bc.data = [flow]
        bc.categoryAxis.categoryNames = [str(h) for h in range(24)]
        bc.bars[0].fillColor = colors.HexColor("#c9a227")
        bc.valueAxis.valueMin = 0
        for axis in (bc.categoryAxis, bc.valueAxis):
            axis.labels.fontName, axis.labels.fontSize = style.font, 7
        d.add(bc)

    return _chart(style, _("Customers per hour of day"), bars)


UNIT_WIDTHS = (7, 22, 27, 10, 12, 14, 25, 18, 15, 30)  # mm, 180 in all


def _unit_table(style: Style, ranked: list[dict[str, Any]], code_label: str) -> Any:
    from reportlab.lib import colors
    from reportlab.lib.units import mm

    head = ["#", code_label, _("Name"), "n", _("Index"), "CSAT", "95% CI", _("Response rate"),
            _("Shrunk index"), _("Significance")]  # fmt: skip
    rows: list[list[Any]] = [head]
    grey: list[int] = []
    extra: list[Any] = [("ALIGN", (-1, 1), (-1, -1), "LEFT")]
    for i, r in enumerate(ranked, 1):
        key = r["verdict"]["badge"]
        if key:  # the badge's cell in the web's colour
            extra.append(("BACKGROUND", (-1, i), (-1, i), colors.HexColor(BADGE_COLOURS[key])))
        s = r["stats"]
        rows.append([str(i), r["code"], style.text(r["name"], style.cell), str(s["n"]),
                     fmt1(s["index"]), pct(s["csat"]), ci_text(s["csat_ci"]),
                     pct(s["response_rate"]), fmt1(r["shrunk_index"]),
                     style.text(badge(r["verdict"]), style.cell)])  # fmt: skip
        if s["small"]:
            grey.append(i)
    widths = [x * mm * 180 / sum(UNIT_WIDTHS) for x in UNIT_WIDTHS]
    return style.table(rows, widths, numeric_from=3, grey=grey, extra=extra)


def _units(style: Style, units: Units, below: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    ranking = units.ranking
    if units.kids:
        kind = units.kids[0]["kind"]
        heading = _("Windows") if kind == "window" else _("Nodes")
        out += style.section(heading + " · " + _("Ranking (shrunk toward the parent)"),
                             _unit_table(style, ranking, _("Code")))  # fmt: skip
    staff = sorted(units.staff, key=lambda r: -r["shrunk_index"])
    if staff:
        out += style.section(_("Staff") + " · " + _("Ranking (shrunk toward the parent)"),
                             _unit_table(style, staff, _("Staff")))  # fmt: skip
    if units.kids or staff:
        out.append(_spacer(1.5))
        out.append(style.text(
            _("Grey: fewer than %(min_n)s ratings, not a verdict. Significantly low: CSAT below "
              "the funnel limits (99.8 %%) of its parent. Significantly improved: CSAT up against "
              "the previous month, p < 0.05.") % {"min_n": reports.MIN_N}, style.note))  # fmt: skip
    if units.kids and units.kids[0]["kind"] == "node":  # above the branches
        out += _below(style, below)
    return out


def _below(style: Style, below: list[dict[str, Any]]) -> list[Any]:
    """Above the branches: the windows and staff members significantly below their branch."""
    if not below:
        return style.section(_("Significantly below their branch"), style.text(_("None.")))
    rows: list[list[Any]] = [[_("Branch"), _("Window or staff member"), "n", "CSAT",
                              _("Branch") + " CSAT", _("Limits")]]  # fmt: skip
    for r in below[:LISTED]:
        point = r["point"]
        rows.append([style.text(f"{r['branch'].code} {r['branch'].name}", style.cell),
                     style.text(f"{r['code']} {r['name']}", style.cell), str(r["stats"]["n"]),
                     pct(r["stats"]["csat"]), pct(r["parent"]["csat"]),
                     f"{pct(point['lo'])}–{pct(point['hi'])}"])  # fmt: skip
    out = style.section(_("Significantly below their branch"), style.table(rows, numeric_from=2))
    if len(below) > LISTED:
        out.append(style.text(_("%(shown)d of %(n)d shown.") % {"shown": LISTED, "n": len(below)},
                              style.note))  # fmt: skip
    return out


def _when(t: datetime | None) -> str:
    return "–" if t is None else f"{t.astimezone(reports.TZ):%Y-%m-%d %H:%M}"


def _alerts(style: Style, node: Node, since: datetime, until: datetime) -> list[Any]:
    alerts = Alert.objects.filter(branch__path__startswith=node.path, created_at__gte=since,
                                  created_at__lt=until)  # fmt: skip
    today = timezone.now().astimezone(reports.TZ).date()
    kinds = dict(Rule.KINDS)
    per_kind = (alerts.values("rule__kind").annotate(n=Count("id"), folded=Sum("count"))
                .order_by("rule__kind"))  # fmt: skip
    states = dict(alerts.values_list("state").annotate(n=Count("id")).order_by())
    overdue = alerts.exclude(state=RESOLVED).filter(deadline__lt=today).count()
    n = sum(states.values())
    counts = [[_("Alerts"), _("open"), _("acknowledged"), _("resolved"), _("overdue")],
              [str(n), *(str(states.get(s, 0)) for s in ("open", "acknowledged", "resolved")),
               str(overdue)]]  # fmt: skip
    out = style.section(_("Alerts of the month"), style.table(counts, numeric_from=0))
    if not n:
        return out
    by_kind: list[list[Any]] = [[_("Rule"), _("Alerts"), _("Count")]]
    for row in per_kind:
        by_kind.append([str(kinds.get(row["rule__kind"], row["rule__kind"])), str(row["n"]),
                        str(row["folded"] or 0)])  # fmt: skip
    out += [_spacer(2), style.table(by_kind)]
    listed: list[list[Any]] = [[_("Raised"), _("Branch"), _("Alert"), _("State")]]
    latest = alerts.select_related("branch", "window").order_by("-created_at", "-id")[:LISTED]
    for a in latest:
        where = f"{a.branch.code} {a.window.name}" if a.window else a.branch.code
        listed.append([_when(a.created_at), style.text(where, style.cell),
                       style.text(a.explanation() or a.summary, style.cell),
                       a.get_state_display()])  # fmt: skip
    from reportlab.lib.units import mm

    out += [_spacer(2), style.table(listed, [x * mm for x in (28, 36, 90, 26)], numeric_from=9)]
    if n > LISTED:
        out.append(style.text(_("%(shown)d of %(n)d shown.") % {"shown": LISTED, "n": n},
                              style.note))  # fmt: skip
    return out


def _appeals(style: Style, node: Node, since: datetime, until: datetime) -> list[Any]:
    appeals = Appeal.objects.filter(branch__path__startswith=node.path, created_at__gte=since,
                                    created_at__lt=until)  # fmt: skip
    states = dict(appeals.values_list("state").annotate(n=Count("id")).order_by())
    n = sum(states.values())
    counts = [[_("Appeals"), _("pending"), _("upheld"), _("rejected")],
              [str(n), *(str(states.get(s, 0)) for s in (Appeal.PENDING, Appeal.UPHELD,
                                                         Appeal.REJECTED))]]  # fmt: skip
    out = style.section(_("Appeals of the month"), style.table(counts, numeric_from=0))
    if not n:
        return out
    listed: list[list[Any]] = [[_("Appealed"), _("Branch"), _("Staff"), _("Rating"), _("State"),
                                _("Decision")]]  # fmt: skip
    for a in appeals.select_related("branch").order_by("-created_at", "-id")[:LISTED]:
        decided = _when(a.decided_at) if a.decided_at else ""
        listed.append([_when(a.created_at), a.branch.code, a.staff_id,
                       f"{a.serial} #{a.journal_seq} · {_when(a.rating_time)}",
                       a.get_state_display(), decided])  # fmt: skip
    out += [_spacer(2), style.table(listed, numeric_from=9)]
    if n > LISTED:
        out.append(style.text(_("%(shown)d of %(n)d shown.") % {"shown": LISTED, "n": n},
                              style.note))  # fmt: skip
    return out


# -- the document ----------------------------------------------------------------------------
def render_monthly(node: Node, first: date, last: date) -> bytes:
    """The monthly report of ``node`` for the month ``first``…``last`` as PDF bytes, in the
    active language."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, SimpleDocTemplate

    from ..casework.pdf import loop_flowables
    from ..surveys.pdf import survey_flowables

    style = Style.make(font(), cjk=get_language().startswith("zh"))
    month = Month(first, last)
    scope = reports.Scope(node, month.period.since, month.period.until)
    units = report_units(scope, month.previous.span)
    total = units.parent.stats()
    compare = reports.compare(scope, units.parent, month.previous.span, month.year_before.span)
    time_data = reports.heatmap_and_flow(scope)
    above_branches = bool(units.kids) and units.kids[0]["kind"] == "node"
    below = reports.below_parent(scope) if above_branches else []
    made = f"{timezone.now().astimezone(reports.TZ):%Y-%m-%d %H:%M}"
    heading = f"{node.name} · {_('Monthly service report')} · {first:%Y-%m}"
    made_at = _("Made at %(time)s (%(zone)s)") % {"time": made, "zone": reports.TZ.key}
    story: list[Any] = [
        style.text(heading, style.title),
        style.text(f"{node.code} · {first:%Y-%m-%d} – {last:%Y-%m-%d} · {made_at}", style.note),
        *_summary(style, month, total, compare),
        *_trend(style, month, time_data["series"]),
        _flow(style, time_data["flow"]),
        PageBreak(),
        *_units(style, units, below),
        *_alerts(style, node, scope.since, scope.until),
        *_appeals(style, node, scope.since, scope.until),
        *loop_flowables(node, first, style),  # the 好差评 loop's month
        *survey_flowables(node, first, last, style),  # beside the keypads' figures, not mixed
    ]
    footer = f"{node.name} ({node.code}) · {_('Monthly service report')} {first:%Y-%m}"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(style.font, 7.5)
        canvas.setFillGray(0.4)
        canvas.drawString(15 * mm, 9 * mm, footer)
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm,
                               _("Page %(page)d") % {"page": doc.page})  # fmt: skip
        canvas.restoreState()

    out = io.BytesIO()
    SimpleDocTemplate(
        out, pagesize=A4, title=heading, author="ratepad", lang=get_language(),
        initialFontName=style.font,  # else reportlab names Helvetica, a font not embedded
        leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm, bottomMargin=16 * mm,
    ).build(story, onFirstPage=on_page, onLaterPages=on_page)  # fmt: skip
    return out.getvalue()


@roles(*READERS)
@require_GET
@reads_from_replica
def monthly_pdf(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_month(request)
    try:
        pdf = render_monthly(node, period.first, period.last)
    except PdfFontMissing as exc:  # the server's set-up, not the reader's request
        log.error("monthly PDF refused: %s", exc)
        return errors.page(request, 500, exc)
    record(request, "export.monthly_pdf", code=code, month=period.first.isoformat()[:7])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="ratepad-{node.code}-{period.first:%Y-%m}.pdf"'
    )
    return response
