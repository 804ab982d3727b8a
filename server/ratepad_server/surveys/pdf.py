"""The survey's part of the monthly PDF (``web.monthly``): the node's survey whose period ends
in the month — the gap per SERVQUAL dimension with its interval, adequacy and superiority, the
share inside the zone of tolerance, α, then NPS, CES and overall satisfaction — each with n,
and hidden below the survey's minimum n. Never mixed with the keypad index. In the reader's
language and the PDF's table look."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from ratepad.survey.report import figure_text

from ..org.models import Node
from .service import survey_in


def survey_flowables(node: Node, first: date, last: date, style: Any) -> list[Any]:
    """A heading, a line and a table (reportlab flowables) in ``style`` (``web.monthly.Style``),
    or nothing without a survey."""
    survey = survey_in(node, first, last)
    if survey is None:
        return []
    from ..web.surveys import DIMENSION_NAMES

    report = survey.report
    rows: list[list[str]] = [
        [
            _("Dimension"),
            _("Gap (perception − expectation)"),  # noqa: RUF001  (the web's words)
            _("Adequacy (perception − adequate)"),  # noqa: RUF001
            _("Superiority (perception − desired)"),  # noqa: RUF001
            _("Inside the zone of tolerance"),
            "α",
        ]
    ]
    for d in report["dimensions"]:
        zone, alpha = d["zone"], d["alpha"]
        inside = "–" if zone is None or zone["small"] else f"{zone['inside'] * 100:.0f}%"
        a = "–" if alpha is None or alpha["small"] else f"{alpha['alpha']:.3f}"
        name = str(DIMENSION_NAMES.get(d["name"], d["name"]))
        rows.append([name, figure_text(d["gap"]), figure_text(d["msa"]), figure_text(d["mss"]),
                     inside, a])  # fmt: skip
    for label, key, digits in (
        ("NPS", "nps", 1),
        ("CES", "ces", 2),
        (_("Overall satisfaction"), "overall", 2),
    ):
        rows.append([label, figure_text(report[key], digits), "", "", "", ""])
    line = _("Survey “%(name)s”, %(first)s – %(last)s: %(n)d respondents (n < %(min_n)d: –)") % {
        "name": report["name"], "first": survey.first, "last": survey.last,
        "n": survey.respondents, "min_n": report["min_n"]}  # fmt: skip
    return style.section(  # type: ignore[no-any-return]
        _("Survey"), style.text(line, style.note), style.table(rows, size=7)
    )
