"""Responses to a survey, read from CSV against its definition.

The header names the questions by id (any order; the definition's ``id_column`` may name the
respondent; no other column). Each further line is one respondent; a blank cell is an answer not
given; any other cell must be a whole number on the question's scale. Every bad cell is reported,
one line each (row, column, why), in one :class:`SurveyImportError`; nothing is imported then.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

from ..errors import SurveyFormatError
from .definition import SurveyDefinition

MAX_ERRORS = 100  # lines listed; the rest are counted


class SurveyImportError(SurveyFormatError):
    """A responses file that does not fit its definition: ``errors`` has one line per problem
    (the first ``MAX_ERRORS``), ``total`` counts them all."""

    def __init__(self, errors: list[str], total: int) -> None:
        self.errors = errors
        self.total = total
        more = f"\n... and {total - len(errors)} more" if total > len(errors) else ""
        super().__init__("\n".join(errors) + more)


@dataclass(frozen=True)
class Responses:
    """Respondents x questions (the definition's order); None: not answered."""

    rows: tuple[tuple[int | None, ...], ...]
    respondents: tuple[str, ...]
    """The ``id_column`` values, else the line numbers."""
    empty_rows: int = 0

    def column(self, index: int) -> list[int | None]:
        return [row[index] for row in self.rows]


def parse_responses(
    definition: SurveyDefinition, text: str, *, source: str = "responses", max_rows: int = 0
) -> Responses:
    """Read responses CSV text (see the module's description); ``max_rows`` > 0 bounds the
    respondents."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    errors: list[str] = []
    total = 0

    def bad(line: int, column: str, why: str) -> None:
        nonlocal total
        total += 1
        if len(errors) < MAX_ERRORS:
            where = f"row {line}, column {column!r}" if column else f"row {line}"
            errors.append(f"{source}: {where}: {why}")

    try:
        header: list[str] | None = None
        for fields in reader:
            if any(f.strip() for f in fields):
                header = [f.strip() for f in fields]
                break
        if header is None:
            raise SurveyImportError([f"{source}: empty file, no header line"], 1)
        header_line = reader.line_num
        index = {q.id: i for i, q in enumerate(definition.questions)}
        ranges = [(q.low, q.high) for q in definition.questions]
        columns: list[int] = []  # per CSV column: question index, -1 respondent id, -2 unknown
        seen: set[str] = set()
        for name in header:
            if name in seen:
                bad(header_line, name, "the column appears twice")
            seen.add(name)
            if name in index:
                columns.append(index[name])
            elif definition.id_column and name == definition.id_column:
                columns.append(-1)
            else:
                columns.append(-2)
                bad(header_line, name, "no question of the survey has this id")
        for q in definition.questions:
            if q.id not in seen:
                bad(header_line, q.id, "the column is missing")
        if total:
            raise SurveyImportError(errors, total)
        width = len(header)
        k = len(definition.questions)
        rows: list[tuple[int | None, ...]] = []
        ids: list[str] = []
        empty = 0
        for fields in reader:
            line = reader.line_num
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) != width:
                bad(line, "", f"{len(fields)} fields, the header has {width}")
                continue
            row: list[int | None] = [None] * k
            rid = str(line)
            for cell, col, name in zip(fields, columns, header, strict=True):
                text_ = cell.strip()
                if col == -1:
                    rid = text_ or rid
                    continue
                if not text_:
                    continue
                try:
                    value = int(text_)
                except ValueError:
                    bad(line, name, f"{text_[:20]!r} is not a whole number")
                    continue
                low, high = ranges[col]
                if not low <= value <= high:
                    bad(line, name, f"{value} is outside the scale {low}..{high}")
                    continue
                row[col] = value
            if all(v is None for v in row):
                empty += 1
                continue
            rows.append(tuple(row))
            ids.append(rid)
            if max_rows and len(rows) > max_rows:
                raise SurveyImportError([f"{source}: more than {max_rows} respondents"], 1)
    except csv.Error as exc:
        bad(reader.line_num, "", str(exc))
    if total:
        raise SurveyImportError(errors, total)
    if not rows:
        raise SurveyImportError([f"{source}: no responses"], 1)
    return Responses(tuple(rows), tuple(ids), empty)


def read_responses(definition: SurveyDefinition, path: str | os.PathLike[str]) -> Responses:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise SurveyFormatError(f"{name}: {why}") from None
    except OSError as exc:
        raise SurveyFormatError(f"{name}: {exc.strerror or exc}") from None
    return parse_responses(definition, text, source=name)
