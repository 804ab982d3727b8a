"""Satisfaction metrics: pure functions used by the web, the API and the agent's summary.

No I/O and no numerical library at run time (the normal distribution is the standard library's,
the binomial and F distributions are in ``ratepad._special``). Every function is checked against
scipy, statsmodels and pingouin in tests/test_metrics.py.

Edge cases, the same everywhere:

- Counts are non-negative integers; ``k > n`` is an error.
- ``n = 0`` (no ratings, an empty ``counts`` or all counts 0) has no rate, index or interval:
  :class:`~ratepad.errors.MetricsError` (a ``ValueError``). Callers show "n = 0" instead.
- ``k = 0`` and ``k = n`` are ordinary: the Wilson interval is then exactly ``(0, hi)`` or
  ``(lo, 1)``.
- ``confidence`` must lie strictly between 0 and 1.
- A score present in ``counts`` but missing from ``values`` is an error naming the score.

Every error raised on purpose is a ``MetricsError`` with a one-line message.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Literal, TypedDict

from ratepad import _special
from ratepad.errors import MetricsError

__all__ = [
    "TwoProportions",
    "alpha_from_covariance",
    "cronbach_alpha",
    "csat",
    "feldt_interval",
    "funnel_limits",
    "item_matrix",
    "level_index",
    "pairwise_covariance",
    "shrunk_index",
    "shrunk_rate",
    "spaced_values",
    "top_count",
    "two_proportions",
    "wilson",
]

_NORMAL = NormalDist()


class TwoProportions(TypedDict):
    """Result of :func:`two_proportions`."""

    z: float
    p: float
    diff: float
    ci: tuple[float, float]


# --- argument checks ----------------------------------------------------------------------------


def _count(value: int, name: str) -> int:
    if isinstance(value, bool):
        raise MetricsError(f"{name} must be an integer count, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise MetricsError(f"{name} must be an integer count, not {value!r}") from None
    if number < 0:
        raise MetricsError(f"{name} must be >= 0, got {number}")
    return number


def _k_of_n(k: int, n: int, k_name: str = "k", n_name: str = "n") -> tuple[int, int]:
    k = _count(k, k_name)
    n = _count(n, n_name)
    if n == 0:
        raise MetricsError(f"{n_name} = 0: no observations, the rate is undefined")
    if k > n:
        raise MetricsError(f"{k_name} = {k} exceeds {n_name} = {n}")
    return k, n


def _confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise MetricsError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


def _finite(value: float, name: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise MetricsError(f"{name} must be a finite number, got {value!r}")
    return x


def _unit(value: float, name: str) -> float:
    x = _finite(value, name)
    if not 0.0 <= x <= 1.0:
        raise MetricsError(f"{name} must lie in [0, 1], got {value!r}")
    return x


def _z(confidence: float) -> float:
    """Two-sided normal critical value: P(|Z| <= z) = confidence."""
    return _NORMAL.inv_cdf(0.5 + 0.5 * _confidence(confidence))


def _total(counts: Mapping[int, int]) -> int:
    total = 0
    for score, count in counts.items():
        total += _count(count, f"count of score {score!r}")
    if total == 0:
        raise MetricsError("no ratings (empty counts or all counts 0): the metric is undefined")
    return total


# --- indexes and shares -------------------------------------------------------------------------


def spaced_values(levels: int, top: float = 100.0) -> dict[int, float]:
    """Level values for scores 1..levels spread evenly from 0 (score 1) to ``top``.

    ``spaced_values(4)`` gives {1: 0, 2: 33.3.., 3: 66.6.., 4: 100}, the values of HappyOrNot's
    Happy Index; ``spaced_values(5)`` gives 0, 25, 50, 75, 100.
    """
    levels = _count(levels, "levels")
    if levels < 2:
        raise MetricsError(f"a scale needs at least 2 levels, got {levels}")
    return {s: top * (s - 1) / (levels - 1) for s in range(1, levels + 1)}


def level_index(counts: Mapping[int, int], values: Mapping[int, float]) -> float:
    """Satisfaction index: the mean level value, sum(count * value) / sum(count).

    ``counts`` and ``values`` map a score to its count and to its level value. Every score in
    ``counts`` (also one counted 0 times) needs a value; values of scores never counted are
    ignored.
    """
    missing = [score for score in counts if score not in values]
    if missing:
        raise MetricsError(f"no level value for score(s) {sorted(missing, key=repr)!r}")
    n = _total(counts)
    weighted = math.fsum(
        count * _finite(values[score], f"value of score {score!r}")
        for score, count in counts.items()
    )
    return weighted / n


def top_count(
    counts: Mapping[int, int], top: int = 2, *, levels: Iterable[int] | None = None
) -> tuple[int, int]:
    """(ratings in the ``top`` highest levels, all ratings): the k and n behind :func:`csat`.

    The levels of the scale are ``levels`` when given (then every score in ``counts`` must be one
    of them), else the scores present in ``counts``: pass a count of 0 for a level nobody chose,
    or pass ``levels``, else "the top two" would reach one level too far down.
    """
    top = _count(top, "top")
    scale = sorted(set(counts) if levels is None else set(levels))
    unknown = [score for score in counts if score not in set(scale)]
    if unknown:
        raise MetricsError(f"score(s) {sorted(unknown)!r} are not levels of the scale")
    n = _total(counts)
    if not 1 <= top <= len(scale):
        raise MetricsError(f"top must lie in 1..{len(scale)} (the number of levels), got {top}")
    chosen = set(scale[-top:])
    k = sum(count for score, count in counts.items() if score in chosen)
    return k, n


def csat(counts: Mapping[int, int], top: int = 2, *, levels: Iterable[int] | None = None) -> float:
    """CSAT: the share (0..1) of ratings in the ``top`` highest levels (see :func:`top_count`)."""
    k, n = top_count(counts, top, levels=levels)
    return k / n


# --- intervals and tests for proportions --------------------------------------------------------


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the proportion k/n (no continuity correction).

    Exactly 0 (1) at the bound when k = 0 (k = n); ``n = 0`` is an error.
    """
    k, n = _k_of_n(k, n)
    return _wilson(k, n, _z(confidence))


def two_proportions(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> TwoProportions:
    """Compare k1/n1 with k2/n2 (this period against the previous one or last year's).

    ``z`` and ``p``: the pooled two-sided z-test of equal proportions. ``diff`` = p1 - p2 and
    ``ci``: Newcombe's hybrid score interval for it (his method 10, from the two Wilson
    intervals). When both samples are all 0 or all 1 the pooled variance is 0: there is no
    evidence of a difference, and ``z`` = 0, ``p`` = 1 by definition.
    """
    k1, n1 = _k_of_n(k1, n1, "k1", "n1")
    k2, n2 = _k_of_n(k2, n2, "k2", "n2")
    z_crit = _z(confidence)
    p1 = k1 / n1
    p2 = k2 / n2
    diff = p1 - p2
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance > 0.0:
        z = diff / math.sqrt(variance)
        p_value = math.erfc(abs(z) / math.sqrt(2.0))
    else:
        z, p_value = 0.0, 1.0
    lo1, hi1 = _wilson(k1, n1, z_crit)
    lo2, hi2 = _wilson(k2, n2, z_crit)
    lo = diff - math.sqrt((p1 - lo1) ** 2 + (hi2 - p2) ** 2)
    hi = diff + math.sqrt((hi1 - p1) ** 2 + (p2 - lo2) ** 2)
    return {"z": z, "p": p_value, "diff": diff, "ci": (lo, hi)}


# --- ranking with shrinkage ---------------------------------------------------------------------


def shrunk_rate(k: int, n: int, prior_rate: float, prior_weight: float) -> float:
    """(k + w p0) / (n + w): the rate pulled towards ``prior_rate`` by ``prior_weight`` pseudo-
    ratings (the posterior mean under a Beta(w p0, w (1 - p0)) prior). ``n = 0`` gives p0."""
    k = _count(k, "k")
    n = _count(n, "n")
    if k > n:
        raise MetricsError(f"k = {k} exceeds n = {n}")
    p0 = _unit(prior_rate, "prior_rate")
    w = _finite(prior_weight, "prior_weight")
    if w < 0.0:
        raise MetricsError(f"prior_weight must be >= 0, got {prior_weight!r}")
    if n + w == 0.0:
        raise MetricsError("n = 0 and prior_weight = 0: the rate is undefined")
    return (k + w * p0) / (n + w)


def shrunk_index(index: float, n: int, prior_index: float, prior_weight: float) -> float:
    """(n index + w prior) / (n + w): an index over n ratings pulled towards ``prior_index``,
    so that a window with few ratings does not top or tail a ranking by chance. ``n = 0`` gives
    the prior (``index`` is then ignored, pass any finite number)."""
    n = _count(n, "n")
    prior = _finite(prior_index, "prior_index")
    w = _finite(prior_weight, "prior_weight")
    if w < 0.0:
        raise MetricsError(f"prior_weight must be >= 0, got {prior_weight!r}")
    if n + w == 0.0:
        raise MetricsError("n = 0 and prior_weight = 0: the index is undefined")
    if n == 0:
        return prior
    return (n * _finite(index, "index") + w * prior) / (n + w)


# --- funnel plot --------------------------------------------------------------------------------


def _funnel_limit(q: float, n: int, p0: float) -> float:
    cdf: dict[int, float] = {}
    r = _special.binom_ppf(q, n, p0, cdf)
    at_r = cdf[r] if r in cdf else _special.binom_cdf(r, n, p0)
    below = cdf[r - 1] if r - 1 in cdf else _special.binom_cdf(r - 1, n, p0)
    alpha = (at_r - q) / (at_r - below)
    return min(1.0, max(0.0, (r - alpha) / n))


def funnel_limits(p0: float, n: int, confidence: float) -> tuple[float, float]:
    """Control limits (lo, hi) on the proportion for a unit with n ratings under the target p0.

    Spiegelhalter's exact binomial limits with interpolation (Statistics in Medicine 2005,
    "Funnel plots for comparing institutional performance", appendix A.1.1): for the tail
    probability q (= (1 - c)/2 for lo, (1 + c)/2 for hi), r is the smallest count with
    P(R <= r) >= q for R ~ Binomial(n, p0), and the limit is (r - a)/n with
    a = (P(R <= r) - q) / (P(R <= r) - P(R <= r - 1)); this makes the limits a continuous,
    smooth funnel in n. Limits are clipped to [0, 1] (the lower one can fall below 0 when r = 0).
    ``p0`` = 0 or 1 gives (p0, p0). Typical confidences: 0.95 and 0.998.
    """
    p0 = _unit(p0, "p0")
    n = _count(n, "n")
    if n == 0:
        raise MetricsError("n = 0: no funnel limits without ratings")
    c = _confidence(confidence)
    if p0 in (0.0, 1.0):
        return p0, p0
    tail = 0.5 * (1.0 - c)
    return _funnel_limit(tail, n, p0), _funnel_limit(1.0 - tail, n, p0)


# --- reliability --------------------------------------------------------------------------------


def feldt_interval(alpha: float, n: int, k: int, confidence: float = 0.95) -> tuple[float, float]:
    """Feldt's interval for Cronbach's alpha with n respondents and k items.

    lo = 1 - (1 - alpha) F_{1 - g/2}(n - 1, (n - 1)(k - 1)), hi = the same with F_{g/2}, where
    F_q is the q-quantile of the F distribution and g = 1 - confidence (Feldt, Woodruff and Salih
    1987).
    """
    a = _finite(alpha, "alpha")
    n = _count(n, "n")
    k = _count(k, "k")
    if n < 2 or k < 2:
        raise MetricsError(f"Feldt's interval needs n >= 2 and k >= 2, got n = {n}, k = {k}")
    g = 1.0 - _confidence(confidence)
    d1 = float(n - 1)
    d2 = d1 * (k - 1)
    lo = 1.0 - (1.0 - a) * _special.f_isf(g / 2.0, d1, d2)
    hi = 1.0 - (1.0 - a) * _special.f_ppf(g / 2.0, d1, d2)
    return lo, hi


def _present(value: float | None, row: int, item: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise MetricsError(f"row {row}, item {item}: {value!r} is not a score")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MetricsError(f"row {row}, item {item}: {value!r} is not a score") from None
    if math.isnan(x):
        return None
    if math.isinf(x):
        raise MetricsError(f"row {row}, item {item}: the score is infinite")
    return x


def item_matrix(rows: Sequence[Sequence[float | None]]) -> list[list[float | None]]:
    """Validate respondents x items: at least 2 rows and 2 items, all rows of one length,
    scores finite numbers or missing (None or NaN, returned as None)."""
    if len(rows) < 2:
        raise MetricsError(f"at least 2 respondents are needed, got {len(rows)}")
    k = len(rows[0])
    if k < 2:
        raise MetricsError(f"at least 2 items are needed, got {k}")
    matrix: list[list[float | None]] = []
    for i, row in enumerate(rows):
        if len(row) != k:
            raise MetricsError(f"row {i} has {len(row)} items, row 0 has {k}")
        matrix.append([_present(v, i, j) for j, v in enumerate(row)])
    return matrix


def pairwise_covariance(matrix: Sequence[Sequence[float | None]]) -> list[list[float]]:
    """Covariance matrix with pairwise deletion, as pandas' ``DataFrame.cov`` computes it:
    entry (i, j) from the rows where both items are present (their own means, divisor m - 1),
    the diagonal from the rows where the item is present. A pair present together in fewer than
    2 rows is an error (pandas would give NaN)."""
    k = len(matrix[0])
    columns = [[row[j] for row in matrix] for j in range(k)]
    cov = [[0.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i, k):
            pairs = [
                (a, b)
                for a, b in zip(columns[i], columns[j], strict=True)
                if a is not None and b is not None
            ]
            m = len(pairs)
            if m < 2:
                what = f"item {i}" if i == j else f"items {i} and {j}"
                raise MetricsError(
                    f"{what}: fewer than 2 respondents answered {'it' if i == j else 'both'}"
                )
            mean_a = math.fsum(a for a, _ in pairs) / m
            mean_b = math.fsum(b for _, b in pairs) / m
            value = math.fsum((a - mean_a) * (b - mean_b) for a, b in pairs) / (m - 1)
            cov[i][j] = cov[j][i] = value
    return cov


def alpha_from_covariance(cov: Sequence[Sequence[float]]) -> float:
    """k/(k-1) (1 - trace(C) / sum(C)) for a k x k item covariance matrix C."""
    k = len(cov)
    total = math.fsum(math.fsum(row) for row in cov)
    if not total > 0.0:
        raise MetricsError("the total score has no variance: alpha is undefined")
    trace = math.fsum(cov[i][i] for i in range(k))
    return (k / (k - 1)) * (1.0 - trace / total)


def cronbach_alpha(
    rows: Sequence[Sequence[float | None]],
    confidence: float = 0.95,
    *,
    missing: Literal["pairwise", "listwise"] = "pairwise",
) -> tuple[float, tuple[float, float]]:
    """Cronbach's alpha of respondents x items with Feldt's interval: (alpha, (lo, hi)).

    Missing scores are None (or NaN). ``missing="pairwise"`` (the default) does what pingouin's
    ``cronbach_alpha`` does: alpha from the pairwise-deletion covariance matrix, and Feldt's
    interval with n = all rows. ``missing="listwise"`` first drops every row with a missing score
    and uses the remaining rows for both alpha and n (pingouin 0.6 keeps n = all rows there; its
    published listwise interval is ``feldt_interval(alpha, len(rows), k)``). The interval is not
    rounded (pingouin rounds it to 3 decimals).
    """
    c = _confidence(confidence)
    matrix = item_matrix(rows)
    if missing == "listwise":
        matrix = [row for row in matrix if all(v is not None for v in row)]
        if len(matrix) < 2:
            raise MetricsError(
                f"listwise deletion leaves {len(matrix)} complete respondent(s), 2 are needed"
            )
    elif missing != "pairwise":
        raise MetricsError(f"missing must be 'pairwise' or 'listwise', got {missing!r}")
    alpha = alpha_from_covariance(pairwise_covariance(matrix))
    return alpha, feldt_interval(alpha, len(matrix), len(matrix[0]), c)
