"""`ratepad survey FILE`: Cronbach's alpha and item-total statistics of a questionnaire."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli_common import EXIT_OK, UsageError
from .errors import MetricsError, SurveyFormatError


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def cmd_survey(args: argparse.Namespace) -> int:
    from .surveys import read_scores_csv, render_json, render_text, survey_report

    try:
        report = survey_report(read_scores_csv(args.file), args.confidence)
    except (SurveyFormatError, MetricsError) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "survey",
        help="Cronbach's alpha and item-total statistics of questionnaire scores (CSV)",
        description="Read item scores per respondent from FILE: a wide CSV (header = item "
        "names, one line per respondent, blank = missing) or a long one (columns Subj, Items, "
        "Scores). Prints Cronbach's alpha with Feldt's interval (missing scores handled "
        "pairwise) and per item n, mean, sd, the corrected item-total correlation and alpha "
        "if the item is deleted.",
    )
    p.add_argument("file", metavar="FILE", help="CSV file (UTF-8, with or without BOM)")
    p.add_argument(
        "--confidence",
        type=_confidence,
        default=0.95,
        metavar="C",
        help="confidence of the interval (default 0.95)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_survey)
