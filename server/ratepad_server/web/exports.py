"""Exports: a report's table or a rating list as CSV (UTF-8 with BOM, so Excel opens Chinese
text) or XLSX (openpyxl); the printable monthly report of a node as PDF (reportlab, with its
charts drawn by reportlab's own graphics, Chinese text in the standard STSong CID font)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from ..audit.log import record
from ..dbrouter import reads_from_replica
from ..reports import service as reports
from . import ratinglist
from .access import ALL, READERS, roles, scoped_node
from .period import Period, parse_month, parse_period
from .views import _scope

# one export is built in memory (an XLSX file must be): at most this many ratings (a setting)
EXPORT_MAX_ROWS = settings.EXPORT_MAX_ROWS
FORMATS = ("csv", "xlsx")
REPORT_HEADER = ["level", "code", "name", "n", "n_all", "index", "csat", "csat_lo", "csat_hi",
                 "response_rate", "prompts", "small_n", "shrunk_index"]  # fmt: skip


def _f(x: Any, digits: int = 4) -> Any:
    return round(x, digits) if isinstance(x, float) else x


def report_table(request: HttpRequest, code: str) -> tuple[str, list[list[Any]]]:
    node = scoped_node(request, code)
    scope = _scope(request, node, parse_period(request))
    parent = reports.total(scope)
    kids = reports.children(scope)
    rows: list[list[Any]] = []
    units: list[tuple[str, dict[str, Any]]] = [
        ("total", {"code": node.code, "name": node.name, "cell": parent})
    ]
    staff = reports.staff_rows(scope)
    ranked = {r["code"]: r for r in reports.ranking(kids + staff, parent)}
    units += [(r["kind"], r) for r in kids] + [("staff", r) for r in staff]
    for level, u in units:
        s = u["cell"].stats()
        ci = s["csat_ci"] or (None, None)
        shrunk = ranked.get(u["code"], {}).get("shrunk_index")
        rows.append([level, u["code"], u["name"], s["n"], s["n_all"], _f(s["index"], 2),
                     _f(s["csat"]), _f(ci[0]), _f(ci[1]), _f(s["response_rate"]), s["prompts"],
                     s["small"], _f(shrunk, 2)])  # fmt: skip
    return f"report-{node.code}", [REPORT_HEADER, *rows]


def ratings_table(request: HttpRequest, code: str) -> tuple[str, list[list[Any]]]:
    node = scoped_node(request, code)
    scope = _scope(request, node, parse_period(request))
    header = ["time", "serial", "journal_seq", "window", "staff_id", "score", "level_value",
              "flags"]  # fmt: skip
    # the rows the ratings list shows under the same filters, in its order
    ratings = ratinglist.filtered(scope, ratinglist.parse_filters(request))
    rows = [[r["time"].astimezone(reports.TZ).isoformat(), r["serial"], r["journal_seq"],
             r["window"], r["staff_id"], r["score"], r["level_value"], " ".join(r["flags"])]
            for r in ratinglist.rows(scope, ratings[:EXPORT_MAX_ROWS + 1])]  # fmt: skip
    if len(rows) > EXPORT_MAX_ROWS:  # refused, not cut short: a partial export misleads
        raise BadRequest(f"more than {EXPORT_MAX_ROWS} ratings: choose a shorter period or "
                         "one window")  # fmt: skip
    return f"ratings-{node.code}", [header, *rows]


# a cell a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, and a
# tab or carriage return ahead of one
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that starts like a formula gets a leading ``'``: Excel and LibreOffice then
    show it as text. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _xlsx_rows(ws: Any, table: list[list[Any]]) -> Iterator[list[Any]]:
    """The table's rows for openpyxl, no text a formula: openpyxl makes a formula of any text
    starting with ``=``, so such a text goes in as a string cell; characters XML cannot hold
    are dropped (openpyxl refuses them). Other values as they are (the fast path)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: Any) -> Any:
        if not isinstance(value, str) or not (
            value.startswith("=") or ILLEGAL_CHARACTERS_RE.search(value)
        ):
            return value
        text = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        text.data_type = "s"
        return text

    for row in table:
        yield [cell(v) for v in row]


def _respond(name: str, table: list[list[Any]], fmt: str) -> HttpResponse:
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # the BOM: Excel then reads UTF-8
        writer = csv.writer(buf)
        for row in table:
            writer.writerow([csv_cell(v) for v in row])
        response = HttpResponse(buf.getvalue().encode("utf-8"), content_type="text/csv; "
                                "charset=utf-8")  # fmt: skip
    else:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)  # rows streamed out: several times faster on big tables
        ws = wb.create_sheet(name[:31])
        for row in _xlsx_rows(ws, table):
            ws.append(row)
        out = io.BytesIO()
        wb.save(out)
        response = HttpResponse(out.getvalue(), content_type="application/vnd.openxmlformats-"
                                "officedocument.spreadsheetml.sheet")  # fmt: skip
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@roles(*READERS)
@require_GET
@reads_from_replica
def export_report(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise BadRequest("format: csv or xlsx")
    name, table = report_table(request, code)
    record(request, "export.report", code=code, format=fmt)
    return _respond(name, table, fmt)


@roles(*ALL)
@require_GET
@reads_from_replica
def export_ratings(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise BadRequest("format: csv or xlsx")
    name, table = ratings_table(request, code)
    record(request, "export.ratings", code=code, format=fmt)
    return _respond(name, table, fmt)


# -- the monthly PDF -----------------------------------------------------------------------------
@roles(*READERS)
@require_GET
@reads_from_replica
def monthly_pdf(request: HttpRequest, code: str) -> HttpResponse:
    node = scoped_node(request, code)
    period = parse_month(request)
    scope = reports.Scope(node, period.since, period.until)
    pdf = render_monthly(scope, period)
    record(request, "export.monthly_pdf", code=code, month=period.first.isoformat()[:7])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="ratepad-{node.code}-{period.first:%Y-%m}.pdf"'
    )
    return response


def render_monthly(scope: reports.Scope, period: Period) -> bytes:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    font = "STSong-Light"
    title = ParagraphStyle("t", fontName=font, fontSize=16, leading=22)
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=13)
    node = scope.node
    parent = reports.total(scope)
    total = parent.stats()
    kids = reports.children(scope) or reports.staff_rows(scope)
    time_data = reports.heatmap_and_flow(scope)
    cmp = reports.compare(scope, parent)

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x * 100:.1f}%"

    # a Paragraph's text is reportlab's XML-like markup: a node's name (anyone's input) is
    # escaped, else "<b>" or "&" in it breaks the page or restyles it
    story: list[Any] = [
        Paragraph(
            escape(f"{node.name}（{node.code}）服务评价月报 / monthly report {period.first:%Y-%m}"),
            title,
        ),
        Spacer(1, 4 * mm),
    ]
    ci = total["csat_ci"]
    index = "–" if total["index"] is None else f"{total['index']:.1f}"
    interval = f" (95% {pct(ci[0])}–{pct(ci[1])})" if ci else ""
    story.append(
        Paragraph(
            f"n = {total['n']}（全部 {total['n_all']}）; 满意度指数 index = {index}; "
            f"CSAT = {pct(total['csat'])}{interval}; "
            f"响应率 response rate = {pct(total['response_rate'])}",
            body,
        )
    )
    for name, label in (("previous", "环比 vs previous month"), ("last_year", "同比 vs last year")):
        c = cmp[name]
        t = c["test"]
        text = f"{label}: CSAT {pct(c['csat'])} (n = {c['n']})" + (
            f", diff {t['diff'] * 100:+.1f} pt, 95% CI {t['ci'][0] * 100:+.1f}…"
            f"{t['ci'][1] * 100:+.1f}, p = {t['p']:.3g}"
            if t
            else ", no data"
        )
        story.append(Paragraph(text, body))
    story.append(Spacer(1, 4 * mm))
    # the daily index (line) and customers per hour of day (bars)
    series = [
        (i + 1, s["index"]) for i, s in enumerate(time_data["series"]) if s["index"] is not None
    ]
    if series:
        d = Drawing(170 * mm, 55 * mm)
        lp = LinePlot()
        lp.x, lp.y, lp.width, lp.height = (
            round(12 * mm),
            round(8 * mm),
            round(150 * mm),
            round(40 * mm),
        )
        lp.data = [series]
        lp.lines[0].strokeColor = colors.HexColor("#2f6fb0")
        lp.yValueAxis.valueMin, lp.yValueAxis.valueMax = 0, 100
        d.add(lp)
        d.add(String(12 * mm, 51 * mm, "每日满意度指数 daily index", fontName=font, fontSize=9))
        story.append(d)
    d = Drawing(170 * mm, 55 * mm)
    bc = VerticalBarChart()
    bc.x, bc.y, bc.width, bc.height = round(12 * mm), round(8 * mm), round(150 * mm), round(40 * mm)
    bc.data = [time_data["flow"]]
    bc.categoryAxis.categoryNames = [str(h) for h in range(24)]
    bc.bars[0].fillColor = colors.HexColor("#7aa974")
    d.add(bc)
    d.add(
        String(
            12 * mm,
            51 * mm,
            "每小时客流 customers per hour of day (mean)",
            fontName=font,
            fontSize=9,
        )
    )
    story.append(d)
    story.append(Spacer(1, 4 * mm))
    table = [["代码 code", "名称 name", "n", "index", "CSAT", "95% CI", "response"]]
    for r in kids:
        s = r["cell"].stats()
        ci = s["csat_ci"]
        table.append(
            [
                r["code"],
                r["name"],
                str(s["n"]),
                "–" if s["index"] is None else f"{s['index']:.1f}",
                pct(s["csat"]),
                f"{pct(ci[0])}–{pct(ci[1])}" if ci else "–",
                pct(s["response_rate"]),
            ]
        )
    t = Table(table, repeatRows=1)
    style: list[Any] = [
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
    ]
    for i, r in enumerate(kids, 1):
        if r["cell"].n < reports.MIN_N:
            style.append(("TEXTCOLOR", (0, i), (-1, i), colors.grey))
    t.setStyle(TableStyle(style))
    story.append(t)
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            escape(f"灰色: n < {reports.MIN_N}, 样本太小 (grey: too few ratings to judge)"), body
        )
    )
    from ..casework.pdf import loop_flowables

    story += loop_flowables(node, period.first, font, body)  # the 好差评 loop's month
    from ..surveys.pdf import survey_flowables

    story += survey_flowables(node, period.first, period.last, font, body)  # beside, not mixed
    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"ratepad {node.code} {period.first:%Y-%m}",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
    ).build(story)
    return out.getvalue()
