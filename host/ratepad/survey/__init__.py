"""Service-quality surveys: a survey's definition (questions, scales, kinds, node and period),
its responses read from CSV against it, and its report (SERVQUAL gaps with the zone of tolerance,
NPS, CES, importance-performance, alpha per dimension), plus an example survey and a generator of
plausible responses. The reliability report of a bare score table stays in ``ratepad.surveys``."""

from __future__ import annotations

from .definition import (
    DIMENSIONS,
    KINDS,
    SURVEY_SCHEMA,
    Question,
    SurveyDefinition,
    example_definition,
    example_path,
    load_definition,
    loads_definition,
    parse_definition,
)
from .generate import generate_csv
from .report import analyse, render_text
from .responses import Responses, SurveyImportError, parse_responses, read_responses

__all__ = [
    "DIMENSIONS",
    "KINDS",
    "SURVEY_SCHEMA",
    "Question",
    "Responses",
    "SurveyDefinition",
    "SurveyImportError",
    "analyse",
    "example_definition",
    "example_path",
    "generate_csv",
    "load_definition",
    "loads_definition",
    "parse_definition",
    "parse_responses",
    "read_responses",
    "render_text",
]
