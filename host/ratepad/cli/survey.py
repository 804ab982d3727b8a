"""`ratepad survey FILE`: Cronbach's alpha and item-total statistics of a questionnaire; with
``--definition`` the service-quality report of a survey's responses (gaps, zone of tolerance,
NPS, CES, importance-performance, alpha per dimension); `ratepad survey generate` writes
plausible responses to a survey (the example one by default)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import MetricsError, SurveyFormatError
from .common import EXIT_OK, EXIT_USAGE, UsageError, one_line

GENERATE = "generate"


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError(f"expected 1..10000000, got {text!r}")
    return value


def _definition(args: argparse.Namespace) -> Any:
    from ..survey import example_definition, load_definition

    d = load_definition(args.definition) if args.definition else example_definition()
    if args.node is not None:
        d = d.with_overrides(node=args.node)
    if args.min_n is not None:
        from dataclasses import replace

        d = replace(d, min_n=args.min_n)
    if args.confidence is not None:
        from dataclasses import replace

        d = replace(d, confidence=args.confidence)
    return d


def cmd_survey(args: argparse.Namespace) -> int:
    from ..survey import (
        SURVEY_SCHEMA,
        SurveyImportError,
        analyse,
        example_path,
        generate_csv,
        read_responses,
    )
    from ..survey.report import render_json as survey_json
    from ..survey.report import render_text as survey_text
    from ..surveys import read_scores_csv, render_json, render_text, survey_report

    if args.schema:
        sys.stdout.write(json.dumps(SURVEY_SCHEMA, indent=2) + "\n")
        return EXIT_OK
    if args.example:
        sys.stdout.write(example_path().read_text(encoding="utf-8"))
        return EXIT_OK
    if args.file is None:
        raise UsageError("give a FILE (or generate, --schema, --example)")
    try:
        if args.file == GENERATE:
            text = generate_csv(_definition(args), args.n, args.seed)
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return EXIT_OK
        if args.definition:
            d = _definition(args)
            report = analyse(d, read_responses(d, args.file))
            sys.stdout.write(survey_json(report) if args.json else survey_text(report))
            return EXIT_OK
        confidence = 0.95 if args.confidence is None else args.confidence
        alpha = survey_report(read_scores_csv(args.file), confidence)
    except SurveyImportError as exc:
        for line in exc.errors:  # every bad cell, one line each
            print(f"ratepad survey: error: {one_line(line)}", file=sys.stderr)
        if exc.total > len(exc.errors):
            print(f"ratepad survey: error: ... and {exc.total - len(exc.errors)} more",
                  file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    except (SurveyFormatError, MetricsError, OSError) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(render_json(alpha) if args.json else render_text(alpha))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "survey",
        help="questionnaire reliability (Cronbach's alpha) or a service-quality survey report",
        description="Read item scores per respondent from FILE: a wide CSV (header = item "
        "names, one line per respondent, blank = missing) or a long one (columns Subj, Items, "
        "Scores). Prints Cronbach's alpha with Feldt's interval (missing scores handled "
        "pairwise) and per item n, mean, sd, the corrected item-total correlation and alpha "
        "if the item is deleted. With --definition (a survey definition, TOML or JSON, see "
        "--schema), FILE holds responses to that survey and the report gives the SERVQUAL gaps "
        "with paired-t intervals, adequacy and superiority, the zone of tolerance, NPS, CES, "
        "importance-performance and alpha per dimension; every bad cell is one error line. "
        "`ratepad survey generate` writes plausible responses (to the example survey unless "
        "--definition is given).",
    )
    p.add_argument("file", metavar="FILE", nargs="?",
                   help="CSV file (UTF-8, with or without BOM), or `generate`")  # fmt: skip
    p.add_argument(
        "--confidence",
        type=_confidence,
        default=None,
        metavar="C",
        help="confidence of the intervals (default 0.95, or the definition's)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--definition", metavar="DEF", help="the survey's definition (.toml/.json)")
    p.add_argument("--node", metavar="CODE", help="the node the responses belong to")
    p.add_argument("--min-n", type=_positive, metavar="N",
                   help="least respondents behind a figure (default 10)")  # fmt: skip
    p.add_argument("--schema", action="store_true", help="print the definition's JSON Schema")
    p.add_argument("--example", action="store_true", help="print the example definition")
    g = p.add_argument_group("generate")
    g.add_argument("-n", type=_positive, default=200, help="respondents (default 200)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("-o", "--output", metavar="OUT", help="write the CSV here, not to stdout")
    p.set_defaults(func=cmd_survey)
