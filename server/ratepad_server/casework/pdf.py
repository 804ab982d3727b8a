"""The loop's part of the monthly PDF (``web.monthly``): the month's cases in the node's
subtree, in all and per child node, in the reader's language and the PDF's table look."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from ..org.models import Node
from .service import loop_report


def loop_flowables(node: Node, first: date, style: Any) -> list[Any]:
    """A heading, a line and a table (reportlab flowables) in ``style`` (``web.monthly.Style``:
    its ``section``, ``text`` and ``table``)."""
    report = loop_report(node, first)

    def line(r: dict[str, Any], label: str | None = None) -> list[str]:
        rate = r["on_time_rate"]
        counts = [str(r[k]) for k in ("opened", "closed", "on_time", "overdue", "escalated")]
        name = label if label is not None else f"{r['code']} {r['name']}"
        return [name, *counts, "–" if rate is None else f"{rate * 100:.1f}%"]

    head = [_("Node"), _("opened"), _("closed"), _("on time"), _("overdue"), _("escalated"),
            _("on-time rate")]  # fmt: skip
    total = report["total"]
    rows = [head, *(line(r) for r in report["rows"]), line(total, _("Total"))]
    note = _("Cases opened in the month. On-time rate: of the cases closed or past their "
             "deadline, the share closed by the deadline.")  # fmt: skip
    return style.section(  # type: ignore[no-any-return]
        _("Monthly loop report"), style.text(note, style.note), style.table(rows, total=True)
    )
