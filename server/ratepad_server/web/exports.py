"""Exports: a report's table or a rating list (and the survey pages' tables) as CSV (UTF-8 with
BOM, so Excel opens Chinese text) or XLSX (openpyxl); the monthly PDF is ``web.monthly``.

An export is a ``Sheet``: typed columns (an identifier, the label the web shows, a kind), rows
of plain values and what it covers (node, period, filters). It is written for a reader in the
reader's language — headers as the web says them; in XLSX real date/time cells and percentages
as numbers formatted as percent, the coverage on a sheet of its own; in CSV the coverage as
``#`` lines above the header, percentages as ``85.7%``, local times — or, with ``?raw=1``, for
a program: identifier headers, fractions, ISO times, flag names and no ``#`` lines.

Whatever the layout, no cell becomes a formula in a spreadsheet (``csv_cell``, ``_xlsx_cell``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from ..audit.log import record
from ..dbrouter import reads_from_replica
from ..org.models import Node, Staff
from ..reports import service as reports
from . import flag_labels, monthly, ratinglist
from .access import ALL, READERS, roles, scoped_node
from .period import Period, parse_period
from .units import report_units

# one export is built in memory (an XLSX file must be): at most this many ratings (a setting)
EXPORT_MAX_ROWS = settings.EXPORT_MAX_ROWS
FORMATS = ("csv", "xlsx")


# -- the sheet -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """``key`` heads the raw layout, ``label`` (the web's word for it) the reader's.
    ``kind``: text, int, num (a figure), num1/num2 (decimals shown), pct (a fraction), date,
    datetime, bool.
    ``show``: a text value as the reader reads it (a state's or a flag's label)."""

    key: str
    label: str | Promise
    kind: str = "text"
    show: Callable[[Any], str] | None = None


@dataclass
class Sheet:
    name: str  # the file's name without the extension
    title: str | Promise  # what it is, in the reader's language (the XLSX sheet's name)
    columns: Sequence[Column]
    rows: list[list[Any]]
    about: list[tuple[str | Promise, Any]] = field(default_factory=list)  # node, period, filters


YES_NO = {True: gettext_lazy("yes"), False: gettext_lazy("no")}
XLSX_FORMATS = {"pct": "0.0%", "num1": "0.0", "num2": "0.00", "date": "yyyy-mm-dd",
                "datetime": "yyyy-mm-dd hh:mm:ss"}  # fmt: skip
XLSX_WIDTHS = {"text": 16, "datetime": 20, "date": 12}  # characters; numbers 10


def local(t: datetime) -> datetime:
    """``t`` in the reports' time zone (``RATEPAD_TIME_ZONE``)."""
    return t.astimezone(reports.TZ)


def _raw(column: Column, value: Any) -> Any:
    """The value for a program: fractions and figures rounded, ISO times, names."""
    if value is None:
        return None
    if column.kind in ("pct", "num"):
        return round(value, 4)
    if column.kind in ("num1", "num2"):
        return round(value, 2)
    if column.kind == "datetime":
        return local(value).isoformat()
    if column.kind == "date":
        return value.isoformat()
    return value


def _typed(column: Column, value: Any) -> Any:
    """The value for a spreadsheet cell: numbers, naive local times, the reader's text."""
    if value is None:
        return None
    if column.kind == "datetime":
        return local(value).replace(tzinfo=None)
    if column.kind == "bool":
        return str(YES_NO[bool(value)])
    if column.show is not None:
        return column.show(value)
    if column.kind in ("pct", "num"):
        return round(value, 4)
    return value


def _text(column: Column, value: Any) -> Any:
    """The value as a CSV cell for a reader: as the web prints it."""
    typed = _typed(column, value)
    if typed is None:
        return ""
    if column.kind == "pct":
        return f"{value * 100:.1f}%"
    if column.kind == "num":
        return f"{typed:g}"
    if column.kind == "num1":
        return f"{value:.1f}"
    if column.kind == "num2":
        return f"{value:.2f}"
    if column.kind == "datetime":
        return f"{typed:%Y-%m-%d %H:%M:%S}"
    if column.kind == "date":
        return f"{typed:%Y-%m-%d}"
    return typed


# a cell a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, and a
# tab or carriage return ahead of one
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that starts like a formula gets a leading ``'``: Excel and LibreOffice then
    show it as text. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv(sheet: Sheet, raw: bool) -> bytes:
    buf = io.StringIO()
    buf.write("\ufeff")  # the BOM: Excel then reads UTF-8
    writer = csv.writer(buf)
    if raw:
        writer.writerow([c.key for c in sheet.columns])
        for row in sheet.rows:
            writer.writerow([csv_cell(_raw(c, v)) for c, v in zip(sheet.columns, row, strict=True)])
    else:
        # what the file covers, above the table: each line starts with "#" (a program skips
        # them as comments: pandas' comment="#", R's comment.char)
        writer.writerow([f"# {sheet.title}"])
        for label, value in sheet.about:
            writer.writerow([f"# {label}", csv_cell(str(value))])
        writer.writerow([csv_cell(str(c.label)) for c in sheet.columns])
        for row in sheet.rows:
            writer.writerow(
                [csv_cell(_text(c, v)) for c, v in zip(sheet.columns, row, strict=True)]
            )
    return buf.getvalue().encode("utf-8")


def _xlsx_cell(ws: Any, value: Any, number_format: str = "", bold: bool = False) -> Any:
    """A cell for openpyxl, never a formula: openpyxl makes a formula of any text starting with
    ``=``, so such a text goes in as a string cell; characters XML cannot hold are dropped
    (openpyxl refuses them). Other plain values go in as they are (the fast path)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    text = isinstance(value, str)
    risky = text and (value.startswith("=") or ILLEGAL_CHARACTERS_RE.search(value))
    if not (risky or number_format or bold):
        return value
    cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value) if text else value)
    if text:
        cell.data_type = "s"
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def _xlsx_rows(ws: Any, sheet: Sheet, raw: bool) -> Iterator[list[Any]]:
    columns = sheet.columns
    if raw:
        yield [_xlsx_cell(ws, c.key) for c in columns]
        for row in sheet.rows:
            yield [_xlsx_cell(ws, _raw(c, v)) for c, v in zip(columns, row, strict=True)]
        return
    yield [_xlsx_cell(ws, str(c.label), bold=True) for c in columns]
    formats = [XLSX_FORMATS.get(c.kind, "") if c.show is None else "" for c in columns]
    for row in sheet.rows:
        yield [_xlsx_cell(ws, _typed(c, v), f if v is not None else "")
               for c, v, f in zip(columns, row, formats, strict=True)]  # fmt: skip


def _sheet_title(text: str) -> str:
    """A worksheet's name: at most 31 characters, none of ``[]:*?/\\``."""
    return "".join(ch for ch in text if ch not in "[]:*?/\\")[:31] or "ratepad"


def _xlsx(sheet: Sheet, raw: bool) -> bytes:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)  # rows streamed out: several times faster on big tables
    ws = wb.create_sheet(_sheet_title(str(sheet.title) if not raw else sheet.name))
    if not raw:
        ws.freeze_panes = "A2"  # the header stays in sight
        for i, c in enumerate(sheet.columns, 1):
            ws.column_dimensions[get_column_letter(i)].width = XLSX_WIDTHS.get(c.kind, 10)
    for row in _xlsx_rows(ws, sheet, raw):
        ws.append(row)
    if not raw:  # what the file covers: a sheet of its own, so the table stays a table
        about = wb.create_sheet(_sheet_title(_("About this export")))
        about.column_dimensions["A"].width, about.column_dimensions["B"].width = 16, 60
        about.append([_xlsx_cell(about, str(sheet.title), bold=True)])
        for label, value in sheet.about:
            shown = value if isinstance(value, int) else str(value)  # a count stays a number
            about.append([_xlsx_cell(about, str(label), bold=True), _xlsx_cell(about, shown)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def respond(sheet: Sheet, fmt: str, raw: bool = False) -> HttpResponse:
    body = _csv(sheet, raw) if fmt == "csv" else _xlsx(sheet, raw)
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{sheet.name}.{fmt}"'
    return response


def export(request: HttpRequest, code: str, fmt: str, action: str,
           build: Callable[[], Sheet]) -> HttpResponse:  # fmt: skip
    """Every export view's course: the format checked, the sheet built (its own checks first:
    scope, period, size), the export recorded in the audit log, the file sent."""
    if fmt not in FORMATS:
        raise BadRequest(_("format: csv or xlsx"))
    raw = request.GET.get("raw", "0")
    if raw not in ("0", "1"):
        raise BadRequest(_("raw: 0 or 1"))
    sheet = build()
    record(request, action, code=code, format=fmt)
    return respond(sheet, fmt, raw == "1")


# -- what an export covers ---------------------------------------------------------------------
def period_text(period: Period) -> str:
    dates = f"{period.first:%Y-%m-%d} – {period.last:%Y-%m-%d}"
    return f"{dates} ({period.label})" if period.label else dates


def covers(node: Node, period: Period, scope: reports.Scope | None = None,
           *more: tuple[str | Promise, Any]) -> list[tuple[str | Promise, Any]]:  # fmt: skip
    """The lines saying what an export holds: node, period, the window and staff member it
    is narrowed to, further filters (``more``), and when it was made."""
    lines: list[tuple[str | Promise, Any]] = [
        (gettext_lazy("Node"), f"{node.name} ({node.code})"),
        (gettext_lazy("Period"), period_text(period)),
    ]
    if scope is not None and scope.window is not None:
        lines.append((gettext_lazy("Window"), f"{scope.window.code} {scope.window.name}"))
    if scope is not None and scope.staff_id is not None:
        lines.append((gettext_lazy("Staff"), " ".join(staff_label(scope))))
    lines += more
    made = f"{timezone.now().astimezone(reports.TZ):%Y-%m-%d %H:%M} ({reports.TZ.key})"
    return [*lines, (gettext_lazy("Exported at"), made)]


def staff_label(scope: reports.Scope) -> tuple[str, str]:
    """The staff member of a narrowed scope: id and name."""
    staff_id = scope.staff_id or ""
    member = Staff.objects.filter(staff_id=staff_id, branch__path__startswith=scope.node.path)
    return staff_id, member.values_list("name", flat=True).first() or ""


def total_label(scope: reports.Scope) -> tuple[str, str]:
    """What a report's total row is the total of: the node, else the window and/or the staff
    member the report is narrowed to (never the branch for a window's figures)."""
    if scope.whole_node:
        return scope.node.code, scope.node.name
    parts = []
    if scope.window is not None:
        parts.append((scope.window.code, scope.window.name))
    if scope.staff_id is not None:
        parts.append(staff_label(scope))
    return " · ".join(p[0] for p in parts), " · ".join(p[1] for p in parts if p[1])


# -- the report's table ------------------------------------------------------------------------
LEVELS = {
    "total": gettext_lazy("Total"),
    "node": gettext_lazy("Node"),
    "window": gettext_lazy("Window"),
    "staff": gettext_lazy("Staff"),
}
BADGES = {  # the report's badges (web/_badge.html)
    "low": gettext_lazy("significantly low"),
    "improved": gettext_lazy("significantly improved"),
    "small": gettext_lazy("too few ratings"),
}
REPORT_COLUMNS = [
    Column("level", pgettext_lazy("report row", "Row"), show=lambda v: str(LEVELS[v])),
    Column("code", gettext_lazy("Code")),
    Column("name", gettext_lazy("Name")),
    Column("n", "n", "int"),
    Column("n_all", gettext_lazy("n (all ratings)"), "int"),
    Column("index", gettext_lazy("Satisfaction index"), "num2"),
    Column("csat", "CSAT", "pct"),
    Column("csat_lo", gettext_lazy("CSAT 95% CI from"), "pct"),
    Column("csat_hi", gettext_lazy("CSAT 95% CI to"), "pct"),
    Column("response_rate", gettext_lazy("Response rate"), "pct"),
    Column("prompts", gettext_lazy("Prompts"), "int"),
    Column("small_n", gettext_lazy("too few ratings"), "bool"),
    Column("shrunk_index", gettext_lazy("Shrunk index"), "num2"),
    Column("significance", gettext_lazy("Significance"), show=lambda v: str(BADGES[v])),
]


def report_sheet(request: HttpRequest, code: str) -> Sheet:
    from .views import _scope  # the report page's scope (views imports the survey exports)

    node = scoped_node(request, code)
    period = parse_period(request)
    scope = _scope(request, node, period)
    # the report's units, ranking and badges (web/units.py); here staff at every level
    found = report_units(scope, period.comparison_spans()[0], staff_everywhere=True)
    label = total_label(scope)
    units: list[tuple[str, str, str, dict[str, Any]]] = [
        ("total", *label, {"stats": found.parent.stats()})
    ]
    units += [(r["kind"], r["code"], r["name"], r) for r in found.kids + found.staff]
    rows: list[list[Any]] = []
    for level, unit_code, name, u in units:
        s = u["stats"]
        ci = s["csat_ci"] or (None, None)
        badge = u["verdict"]["badge"] if "verdict" in u else None
        rows.append([level, unit_code, name, s["n"], s["n_all"], s["index"], s["csat"], ci[0],
                     ci[1], s["response_rate"], s["prompts"], s["small"],
                     u.get("shrunk_index"), badge])  # fmt: skip
    return Sheet(f"report-{node.code}", gettext_lazy("Report"), REPORT_COLUMNS, rows,
                 covers(node, period, scope))  # fmt: skip


# -- the ratings list --------------------------------------------------------------------------
RATING_COLUMNS = [
    Column("time", gettext_lazy("Time"), "datetime"),
    Column("serial", gettext_lazy("Keypad")),
    Column("journal_seq", gettext_lazy("Journal number"), "int"),
    Column("window", gettext_lazy("Window")),
    Column("staff_id", gettext_lazy("Staff")),
    Column("score", gettext_lazy("Score"), "int"),
    Column("level_value", gettext_lazy("Level value"), "int"),
    Column("flags", gettext_lazy("Flags"),
           show=lambda v: " ".join(flag_labels.label(n) for n in v.split())),
]  # fmt: skip


def _filter_lines(filters: ratinglist.Filters) -> list[tuple[str | Promise, Any]]:
    lines: list[tuple[str | Promise, Any]] = []
    if filters.scores:
        lines.append((gettext_lazy("Score"), ", ".join(map(str, filters.scores))))
    if filters.flag:
        lines.append((gettext_lazy("Flag"), flag_labels.label(filters.flag)))
    if filters.prompted:
        lines.append((gettext_lazy("Prompt"), ratinglist.PROMPTED[filters.prompted]))
    return [*lines, (gettext_lazy("Order"), ratinglist.SORT_LABELS[filters.sort])]


def ratings_sheet(request: HttpRequest, code: str) -> Sheet:
    from .views import _scope

    node = scoped_node(request, code)
    period = parse_period(request)
    scope = _scope(request, node, period)
    # the rows the ratings list shows under the same filters, in its order
    filters = ratinglist.parse_filters(request)
    ratings = ratinglist.filtered(scope, filters)
    rows = [[r["time"], r["serial"], r["journal_seq"], r["window"], r["staff_id"], r["score"],
             r["level_value"], " ".join(r["flag_names"])]
            for r in ratinglist.rows(scope, ratings[:EXPORT_MAX_ROWS + 1])]  # fmt: skip
    if len(rows) > EXPORT_MAX_ROWS:  # refused, not cut short: a partial export misleads
        raise BadRequest(_("more than %(n)d ratings: choose a shorter period or one window")
                         % {"n": EXPORT_MAX_ROWS})  # fmt: skip
    about = covers(node, period, scope, *_filter_lines(filters),
                   (gettext_lazy("Ratings"), len(rows)))  # fmt: skip
    return Sheet(f"ratings-{node.code}", gettext_lazy("Ratings"), RATING_COLUMNS, rows, about)


@roles(*READERS)
@require_GET
@reads_from_replica
def export_report(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    return export(request, code, fmt, "export.report", lambda: report_sheet(request, code))


@roles(*ALL)
@require_GET
@reads_from_replica
def export_ratings(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    return export(request, code, fmt, "export.ratings", lambda: ratings_sheet(request, code))


monthly_pdf = monthly.monthly_pdf  # the URL map's name for the monthly PDF (web/monthly.py)
