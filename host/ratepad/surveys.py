"""Questionnaire surveys: read item scores per respondent, report Cronbach's alpha and item-total
statistics.

Two CSV layouts are read (UTF-8, with or without a byte-order mark, comma-separated):

- wide: the header names the items, each further line is one respondent, a blank cell is a
  missing score;
- long: the three columns ``Subj``, ``Items``, ``Scores`` (any order and letter case; pingouin's
  layout), one line per answer; an answer not given is absent or has a blank score.

A respondent with no score at all is dropped (and counted in ``empty_rows``); a respondent with
some scores counts in n, the gaps handled pairwise as in :func:`ratepad.metrics.cronbach_alpha`.
Any file that does not follow this raises :class:`~ratepad.errors.SurveyFormatError` with the
line and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ratepad.errors import MetricsError, SurveyFormatError
from ratepad.metrics import (
    alpha_from_covariance,
    cronbach_alpha,
    item_matrix,
    pairwise_covariance,
)

__all__ = [
    "ItemStats",
    "ScoreTable",
    "SurveyReport",
    "item_total_statistics",
    "parse_scores_csv",
    "read_scores_csv",
    "render_json",
    "render_text",
    "survey_report",
]

_LONG_COLUMNS = ("subj", "items", "scores")


@dataclass(frozen=True)
class ScoreTable:
    """Respondents x items, as read from a CSV file."""

    items: tuple[str, ...]
    respondents: tuple[str, ...]
    """Line numbers (wide) or ``Subj`` values (long), one per row of ``scores``."""
    scores: tuple[tuple[float | None, ...], ...]
    layout: Literal["wide", "long"]
    empty_rows: int = 0
    """Respondents dropped because they gave no score at all."""


@dataclass(frozen=True)
class ItemStats:
    """One item of a questionnaire."""

    name: str
    n: int
    mean: float
    sd: float
    item_rest_r: float | None
    """Corrected item-total correlation (the item against the sum of the other items); None
    when the item or the rest has no variance."""
    alpha_if_deleted: float | None
    """Alpha of the other items; None with only 2 items or when the rest has no variance."""


@dataclass(frozen=True)
class SurveyReport:
    """Reliability of a questionnaire."""

    respondents: int
    items: int
    missing_scores: int
    empty_rows: int
    alpha: float
    ci: tuple[float, float]
    confidence: float
    item_stats: tuple[ItemStats, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "respondents": self.respondents,
            "items": self.items,
            "missing_scores": self.missing_scores,
            "empty_rows": self.empty_rows,
            "alpha": self.alpha,
            "ci": list(self.ci),
            "confidence": self.confidence,
            "missing": "pairwise",
            "item_stats": [
                {
                    "name": s.name,
                    "n": s.n,
                    "mean": s.mean,
                    "sd": s.sd,
                    "item_rest_r": s.item_rest_r,
                    "alpha_if_deleted": s.alpha_if_deleted,
                }
                for s in self.item_stats
            ],
        }


# --- reading ------------------------------------------------------------------------------------


def _score(cell: str, where: str) -> float | None:
    text = cell.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SurveyFormatError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SurveyFormatError(f"{where}: {text!r} is not a finite number")
    return value


def _finish(
    items: Sequence[str],
    ids: Sequence[str],
    rows: Sequence[Sequence[float | None]],
    layout: Literal["wide", "long"],
    source: str,
) -> ScoreTable:
    kept_ids: list[str] = []
    kept: list[tuple[float | None, ...]] = []
    for rid, row in zip(ids, rows, strict=True):
        if any(v is not None for v in row):
            kept_ids.append(rid)
            kept.append(tuple(row))
    if not kept:
        raise SurveyFormatError(f"{source}: no scores")
    return ScoreTable(
        items=tuple(items),
        respondents=tuple(kept_ids),
        scores=tuple(kept),
        layout=layout,
        empty_rows=len(rows) - len(kept),
    )


def parse_scores_csv(text: str, *, source: str = "<csv>") -> ScoreTable:
    """Parse a wide or long score table (see the module's description)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header: list[str] | None = None
        for fields in reader:
            if any(f.strip() for f in fields):
                header = [f.strip() for f in fields]
                break
        if header is None:
            raise SurveyFormatError(f"{source}: empty file, no header line")
        header_line = reader.line_num
        if sorted(h.casefold() for h in header) == sorted(_LONG_COLUMNS):
            return _parse_long(header, reader, source)
        for position, name in enumerate(header, 1):
            if not name:
                raise SurveyFormatError(
                    f"{source}:{header_line}: column {position} of the header has no item name"
                )
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise SurveyFormatError(
                f"{source}:{header_line}: item name(s) {duplicates!r} appear more than once"
            )
        ids: list[str] = []
        rows: list[list[float | None]] = []
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                raise SurveyFormatError(
                    f"{source}:{line}: {len(fields)} fields, the header has {len(header)}"
                )
            rows.append(
                [
                    _score(cell, f"{source}:{line}, column {name!r}")
                    for cell, name in zip(fields, header, strict=True)
                ]
            )
            ids.append(str(line))
    except csv.Error as exc:
        raise SurveyFormatError(f"{source}:{reader.line_num}: {exc}") from None
    return _finish(header, ids, rows, "wide", source)


class _Rows(Protocol):
    """What ``csv.reader`` returns."""

    @property
    def line_num(self) -> int: ...

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _parse_long(header: list[str], reader: _Rows, source: str) -> ScoreTable:
    index = {h.casefold(): i for i, h in enumerate(header)}
    subj_i, item_i, score_i = (index[c] for c in _LONG_COLUMNS)
    items: dict[str, int] = {}
    subjects: dict[str, int] = {}
    answers: dict[tuple[int, int], float | None] = {}
    for fields in reader:
        line = reader.line_num
        if not fields:
            continue
        if len(fields) != len(header):
            raise SurveyFormatError(
                f"{source}:{line}: {len(fields)} fields, the header has {len(header)}"
            )
        subject = fields[subj_i].strip()
        item = fields[item_i].strip()
        if not subject or not item:
            raise SurveyFormatError(f"{source}:{line}: the subject and the item must not be blank")
        s = subjects.setdefault(subject, len(subjects))
        i = items.setdefault(item, len(items))
        if (s, i) in answers:
            raise SurveyFormatError(
                f"{source}:{line}: subject {subject!r} answers item {item!r} a second time"
            )
        answers[(s, i)] = _score(fields[score_i], f"{source}:{line}, column {header[score_i]!r}")
    rows = [[answers.get((s, i)) for i in range(len(items))] for s in range(len(subjects))]
    return _finish(list(items), list(subjects), rows, "long", source)


def read_scores_csv(path: str | os.PathLike[str]) -> ScoreTable:
    """Read a score table from a file; unreadable files also raise ``SurveyFormatError``."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise SurveyFormatError(
            f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise SurveyFormatError(f"{name}: {exc.strerror or exc}") from None
    return parse_scores_csv(text, source=name)


# --- statistics ---------------------------------------------------------------------------------


def item_total_statistics(
    rows: Sequence[Sequence[float | None]], names: Sequence[str] | None = None
) -> tuple[ItemStats, ...]:
    """Per item: n, mean, sd (divisor n - 1), corrected item-total correlation and alpha if the
    item is deleted, all from the pairwise covariance matrix C that alpha uses.

    The item-rest correlation of item i is (sum_j C[i][j] - C[i][i]) / sqrt(C[i][i] V), V being
    the variance of the sum of the other items (the sum of C without row and column i); with
    complete data it equals the Pearson correlation of the item with that sum. Alpha if deleted
    is alpha of C without row and column i, i.e. alpha of the data without that item.
    """
    matrix = item_matrix(rows)
    k = len(matrix[0])
    if names is None:
        names = [str(j + 1) for j in range(k)]
    if len(names) != k:
        raise MetricsError(f"{len(names)} item names for {k} items")
    cov = pairwise_covariance(matrix)
    stats: list[ItemStats] = []
    for i in range(k):
        present = [row[i] for row in matrix if row[i] is not None]
        n = len(present)
        mean = math.fsum(v for v in present if v is not None) / n
        rest = [[cov[a][b] for b in range(k) if b != i] for a in range(k) if a != i]
        rest_variance = math.fsum(math.fsum(r) for r in rest)
        covariance_with_rest = math.fsum(cov[i][j] for j in range(k) if j != i)
        r: float | None = None
        if cov[i][i] > 0.0 and rest_variance > 0.0:
            r = covariance_with_rest / math.sqrt(cov[i][i] * rest_variance)
        alpha_deleted: float | None = None
        if k >= 3 and rest_variance > 0.0:
            alpha_deleted = alpha_from_covariance(rest)
        stats.append(ItemStats(names[i], n, mean, math.sqrt(cov[i][i]), r, alpha_deleted))
    return tuple(stats)


def survey_report(table: ScoreTable, confidence: float = 0.95) -> SurveyReport:
    """Cronbach's alpha with Feldt's interval and the item statistics of a score table.

    Raises :class:`~ratepad.errors.MetricsError` when alpha is undefined (fewer than 2
    respondents or items, a pair of items answered together by fewer than 2 respondents, no
    variance in the total score).
    """
    alpha, ci = cronbach_alpha(table.scores, confidence)
    return SurveyReport(
        respondents=len(table.scores),
        items=len(table.items),
        missing_scores=sum(v is None for row in table.scores for v in row),
        empty_rows=table.empty_rows,
        alpha=alpha,
        ci=ci,
        confidence=float(confidence),
        item_stats=item_total_statistics(table.scores, table.items),
    )


# --- rendering ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_text(report: SurveyReport) -> str:
    """A plain-text report for a terminal."""
    pct = f"{report.confidence * 100:g} %"
    lines = [
        f"Cronbach's alpha {report.alpha:.3f}, {pct} CI {report.ci[0]:.3f} to {report.ci[1]:.3f} "
        f"(Feldt)",
        f"{report.respondents} respondents, {report.items} items, "
        f"{report.missing_scores} missing scores (pairwise)"
        + (f", {report.empty_rows} empty rows dropped" if report.empty_rows else ""),
        "",
    ]
    width = max(4, *(len(s.name) for s in report.item_stats))
    lines.append(
        f"{'item':<{width}}  {'n':>5}  {'mean':>8}  {'sd':>8}  {'item-rest r':>11}  "
        f"{'alpha if deleted':>16}"
    )
    for s in report.item_stats:
        lines.append(
            f"{s.name:<{width}}  {s.n:>5}  {s.mean:>8.3f}  {s.sd:>8.3f}  "
            f"{_fmt(s.item_rest_r):>11}  {_fmt(s.alpha_if_deleted):>16}"
        )
    return "\n".join(lines) + "\n"


def render_json(report: SurveyReport) -> str:
    """The report as JSON (full precision, ``null`` for undefined statistics)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
