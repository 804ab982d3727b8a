"""The survey's part of the monthly PDF (``web.exports.render_monthly``): the node's survey
whose period ends in the month — the gap per SERVQUAL dimension with its interval, adequacy and
superiority, the share inside the zone of tolerance, α, then NPS, CES and overall satisfaction —
each with n, and hidden below the survey's minimum n. Never mixed with the keypad index."""

from __future__ import annotations

from datetime import date
from typing import Any

from ratepad.survey.report import figure_text

from ..org.models import Node
from .service import survey_in

HEAD = ["维度 dimension", "差距 gap P-E", "适当 adequacy P-A", "卓越 superiority P-D",
        "容忍区内 in zone", "α"]  # fmt: skip


def survey_flowables(node: Node, first: date, last: date, font: str, body: Any) -> list[Any]:
    """A heading line and a table (reportlab flowables), or nothing without a survey."""
    survey = survey_in(node, first, last)
    if survey is None:
        return []
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    report = survey.report
    rows: list[list[str]] = [HEAD]
    for d in report["dimensions"]:
        zone, alpha = d["zone"], d["alpha"]
        inside = "–" if zone is None or zone["small"] else f"{zone['inside'] * 100:.0f}%"
        a = "–" if alpha is None or alpha["small"] else f"{alpha['alpha']:.3f}"
        rows.append([d["name"], figure_text(d["gap"]), figure_text(d["msa"]),
                     figure_text(d["mss"]), inside, a])  # fmt: skip
    for label, key, digits in (
        ("NPS", "nps", 1),
        ("CES", "ces", 2),
        ("总体 overall", "overall", 2),
    ):
        rows.append([label, figure_text(report[key], digits), "", "", "", ""])
    table = Table(rows, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 7),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
    ]))  # fmt: skip
    heading = (
        f"顾客满意度调查 survey “{report['name']}” {survey.first} – {survey.last}: "
        f"{survey.respondents} 位受访者 respondents (n < {report['min_n']}: –)"
    )
    return [Spacer(1, 5 * mm), Paragraph(heading, body), table]
