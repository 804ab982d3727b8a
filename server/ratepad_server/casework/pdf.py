"""The loop's part of the monthly PDF (``web.exports.render_monthly``): the month's cases in
the node's subtree, in all and per child node."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..org.models import Node
from .service import loop_report

HEAD = ["代码 code", "名称 name", "立案 opened", "办结 closed", "按期 on time", "逾期 overdue",
        "上报 escalated", "按期率 on-time rate"]  # fmt: skip


def loop_flowables(node: Node, first: date, font: str, body: Any) -> list[Any]:
    """A heading line and a table (reportlab flowables) in the PDF's font and body style."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    report = loop_report(node, first)

    def line(r: dict[str, Any]) -> list[str]:
        rate = r["on_time_rate"]
        counts = [str(r[k]) for k in ("opened", "closed", "on_time", "overdue", "escalated")]
        return [r["code"], r["name"], *counts, "–" if rate is None else f"{rate * 100:.1f}%"]

    total = report["total"]
    table = Table([HEAD, *(line(r) for r in report["rows"]), line(total)], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f2f2f2")),
    ]))  # fmt: skip
    return [
        Spacer(1, 5 * mm),
        Paragraph(
            f"好差评闭环 closed loop {report['month']}: {total['opened']} 件立案 cases "
            f"opened, {total['closed']} 办结 closed",
            body,
        ),
        table,
    ]
