"""Plausible responses to a survey, for demos and benchmarks: each respondent has an
expectation level and a satisfaction of their own, each dimension a typical shortfall (largest
for reliability, as in the SERVQUAL studies), answers scatter around them on the item's scale,
and overall satisfaction, NPS and CES follow the respondent's perceptions. Seeded: the same
seed gives the same file."""

from __future__ import annotations

import csv
import io
import random

from .definition import SurveyDefinition

_SHORTFALL = {"tangibles": 0.2, "reliability": 1.0, "responsiveness": 0.8, "assurance": 0.4,
              "empathy": 0.6}  # fmt: skip
_WEIGHT = {"tangibles": 0.6, "reliability": 1.0, "responsiveness": 0.85, "assurance": 0.8,
           "empathy": 0.7}  # fmt: skip


def generate_csv(definition: SurveyDefinition, n: int, seed: int = 1, missing: float = 0.01) -> str:
    """CSV text with ``n`` respondents answering every question of ``definition`` (a share
    ``missing`` of gap and importance answers left blank)."""
    rng = random.Random(seed)
    qs = definition.questions
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    id_col = [definition.id_column] if definition.id_column else []
    writer.writerow(id_col + [q.id for q in qs])
    dims = definition.dimensions()
    for r in range(n):
        expect = rng.gauss(0.72, 0.12)  # of the scale's span, above its bottom
        mood = rng.gauss(0.0, 0.12)
        level = {d: expect - 0.08 * _SHORTFALL.get(d, 0.5) + mood + rng.gauss(0, 0.05)
                 for d in dims}  # fmt: skip
        perceived = sum(level.values()) / len(level) if level else expect + mood
        row: list[str] = [f"r{r + 1}"] if id_col else []
        for q in qs:
            span = q.high - q.low
            if q.kind == "expectation":
                x = expect + 0.06
            elif q.kind == "perception":
                x = level[q.dimension]
            elif q.kind == "adequate":
                x = expect - 0.2
            elif q.kind == "desired":
                x = expect + 0.12
            elif q.kind == "importance":
                x = 0.55 + 0.35 * _WEIGHT.get(q.attribute, 0.7)
            elif q.kind == "ces":
                x = perceived + 0.05
            elif q.kind == "nps":  # most answer 7-9 when the service is fair
                x = perceived + 0.15
            else:  # overall
                x = perceived
            value = round(q.low + span * min(1.0, max(0.0, x + rng.gauss(0, 0.1))))
            blank = q.kind in ("expectation", "perception", "importance") and (
                rng.random() < missing
            )
            row.append("" if blank else str(value))
        writer.writerow(row)
    return out.getvalue()
