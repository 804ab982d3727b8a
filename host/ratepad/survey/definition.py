"""A survey's definition, read from TOML or JSON and checked against ``SURVEY_SCHEMA`` (published
by ``ratepad survey --schema``), then against the rules a schema cannot say (unique ids, known
scales, gap items paired by attribute, an NPS on 0..10). See docs/surveys.md."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import SurveyFormatError
from ..scenario.schema import SchemaError, validate

DIMENSIONS = ("tangibles", "reliability", "responsiveness", "assurance", "empathy")
"""SERVQUAL's five dimensions, in the order reports list them (others may be named too)."""
GAP_KINDS = ("expectation", "perception", "adequate", "desired")
KINDS = (*GAP_KINDS, "importance", "overall", "nps", "ces")
SINGLE_KINDS = ("overall", "nps", "ces")  # at most one question of each
MAX_QUESTIONS = 200

_NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\s,\"]+$"}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "YYYY-MM-DD"}
_SCALE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["min", "max"],
    "properties": {
        "min": {"type": "integer", "minimum": -100, "maximum": 100},
        "max": {"type": "integer", "minimum": -100, "maximum": 100},
        "label": {"type": "string", "maxLength": 200},
    },
}
SURVEY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ratepad survey definition",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "scales", "questions"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "node": {"type": "string", "maxLength": 64, "description": "the node's code"},
        "first": {**_DATE, "description": "first day of the period the responses belong to"},
        "last": {**_DATE, "description": "last day of that period"},
        "min_n": {"type": "integer", "minimum": 1, "maximum": 100000},
        "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "id_column": {**_NAME, "description": "a CSV column naming the respondent"},
        "scales": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _NAME,
            "additionalProperties": _SCALE,
        },
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_QUESTIONS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "kind", "scale"],
                "properties": {
                    "id": {**_NAME, "description": "the CSV column of the answers"},
                    "kind": {"enum": list(KINDS)},
                    "scale": _NAME,
                    "dimension": {**_NAME, "description": "gap items: e.g. tangibles"},
                    "attribute": {
                        **_NAME,
                        "description": "pairs the gap items of one attribute; importance: "
                        "the attribute or dimension it weighs",
                    },
                    "text": {"type": "string", "maxLength": 1000},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    low: int
    high: int
    dimension: str = ""
    attribute: str = ""
    text: str = ""


@dataclass(frozen=True)
class SurveyDefinition:
    name: str
    questions: tuple[Question, ...]
    node: str = ""
    first: date | None = None
    last: date | None = None
    min_n: int = 10
    confidence: float = 0.95
    id_column: str = ""
    source: dict[str, Any] | None = None
    """The definition as read (JSON-ready), stored with an import."""

    def of_kind(self, kind: str) -> list[int]:
        """Indexes of the questions of one kind, in the definition's order."""
        return [i for i, q in enumerate(self.questions) if q.kind == kind]

    def dimensions(self) -> list[str]:
        """The dimensions of the gap items: SERVQUAL's five first, then others as they come."""
        named = [q.dimension for q in self.questions if q.kind in GAP_KINDS]
        known = [d for d in DIMENSIONS if d in named]
        return known + [d for d in dict.fromkeys(named) if d not in DIMENSIONS]

    def with_overrides(
        self, *, node: str | None = None, first: date | None = None, last: date | None = None
    ) -> SurveyDefinition:
        from dataclasses import replace

        d = replace(
            self,
            node=node if node is not None else self.node,
            first=first if first is not None else self.first,
            last=last if last is not None else self.last,
        )
        if d.first and d.last and d.first > d.last:
            raise SurveyFormatError(f"{d.name}: the period starts after it ends")
        return d


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _day(text: str | None, where: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SurveyFormatError(f"{where}: {text!r} is not a date") from None


def parse_definition(data: Any, source: str = "survey") -> SurveyDefinition:
    """Check parsed TOML/JSON against the schema and the rules; one line on the first error."""
    data = _jsonable(data)
    try:
        validate(data, SURVEY_SCHEMA, what=source)
    except SchemaError as exc:
        raise SurveyFormatError(str(exc)) from None
    scales = data["scales"]
    for name, s in scales.items():
        if s["min"] >= s["max"]:
            raise SurveyFormatError(f"{source}.scales.{name}: min must be below max")
    questions: list[Question] = []
    seen: set[str] = set()
    id_column = data.get("id_column", "")
    for i, q in enumerate(data["questions"]):
        where = f"{source}.questions[{i}]"
        if q["id"] in seen or q["id"] == id_column:
            raise SurveyFormatError(f"{where}: the id {q['id']!r} is used twice")
        seen.add(q["id"])
        if q["scale"] not in scales:
            raise SurveyFormatError(f"{where}: no scale named {q['scale']!r}")
        low, high = scales[q["scale"]]["min"], scales[q["scale"]]["max"]
        kind = q["kind"]
        if kind in GAP_KINDS and not (q.get("dimension") and q.get("attribute")):
            raise SurveyFormatError(f"{where}: a {kind} item needs a dimension and an attribute")
        if kind == "importance" and not q.get("attribute"):
            raise SurveyFormatError(f"{where}: an importance item needs the attribute it weighs")
        if kind == "nps" and (low, high) != (0, 10):
            raise SurveyFormatError(f"{where}: the NPS question needs a 0..10 scale")
        dimension, attribute = q.get("dimension", ""), q.get("attribute", "")
        questions.append(
            Question(q["id"], kind, low, high, dimension, attribute, q.get("text", ""))
        )
    for kind in SINGLE_KINDS:
        if sum(q.kind == kind for q in questions) > 1:
            raise SurveyFormatError(f"{source}: at most one {kind} question")
    pairs: dict[tuple[str, str], str] = {}
    for q in questions:
        if q.kind in GAP_KINDS:
            key = (q.kind, q.attribute)
            if key in pairs:
                raise SurveyFormatError(
                    f"{source}: attribute {q.attribute!r} has two {q.kind} items "
                    f"({pairs[key]!r}, {q.id!r})"
                )
            pairs[key] = q.id
    dims: dict[str, str] = {}
    for q in questions:
        if q.kind in GAP_KINDS and dims.setdefault(q.attribute, q.dimension) != q.dimension:
            raise SurveyFormatError(
                f"{source}: attribute {q.attribute!r} is in two dimensions "
                f"({dims[q.attribute]!r}, {q.dimension!r})"
            )
    definition = SurveyDefinition(
        name=data["name"],
        questions=tuple(questions),
        node=data.get("node", ""),
        first=_day(data.get("first"), f"{source}.first"),
        last=_day(data.get("last"), f"{source}.last"),
        min_n=data.get("min_n", 10),
        confidence=float(data.get("confidence", 0.95)),
        id_column=id_column,
        source=data,
    )
    return definition.with_overrides()  # checks the period


def loads_definition(text: str, kind: str, source: str = "survey") -> SurveyDefinition:
    """``kind``: "toml" or "json"."""
    try:
        data = tomllib.loads(text) if kind == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SurveyFormatError(f"{source}: not valid {kind.upper()}: {exc}") from None
    return parse_definition(data, source)


def load_definition(path: str | Path) -> SurveyDefinition:
    """Read a definition file (.toml, else JSON); unreadable files raise SurveyFormatError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyFormatError(f"{p}: {getattr(exc, 'strerror', None) or exc}") from None
    return loads_definition(text, "toml" if p.suffix.lower() == ".toml" else "json", str(p))


def example_path() -> Path:
    """The example survey shipped with the package (SERVQUAL's 22 attributes, NPS, CES)."""
    return Path(__file__).with_name("servqual_example.toml")


def example_definition() -> SurveyDefinition:
    return load_definition(example_path())
