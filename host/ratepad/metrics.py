"""Satisfaction metrics: pure functions used by the web, the API and the agent's summary.

No I/O and no numerical library at run time (the normal distribution is the standard library's,
the binomial and F distributions are in ``ratepad.stats.special``). Every function is checked
against scipy, statsmodels and pingouin in tests/test_metrics.py.

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

import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Literal, TypedDict

from ratepad.errors import MetricsError
from ratepad.stats import special as _special

__all__ = [
    "MIN_N",
    "IPAGrid",
    "IPAPoint",
    "MeanInterval",
    "NetPromoter",
    "ToleranceShare",
    "TwoProportions",
    "alpha_complete",
    "alpha_from_covariance",
    "cronbach_alpha",
    "csat",
    "enough",
    "feldt_interval",
    "funnel_limits",
    "importance_performance",
    "item_matrix",
    "level_index",
    "mean_interval",
    "net_promoter",
    "paired_difference",
    "pairwise_covariance",
    "pearson",
    "row_means",
    "shrunk_index",
    "shrunk_rate",
    "spaced_values",
    "t_critical",
    "tolerance_zone",
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


VARIANCE_NOISE = 1e-12
"""A total-score variance at or below this share of the summed item variances is rounding noise
of the covariance sums (the items cancel out exactly), and counts as no variance."""


def has_variance(total: float, trace: float) -> bool:
    """Whether a total-score variance ``total`` (with summed item variances ``trace``) is more
    than rounding noise (see ``VARIANCE_NOISE``)."""
    return total > VARIANCE_NOISE * max(trace, 0.0) and total > 0.0


def alpha_from_covariance(cov: Sequence[Sequence[float]]) -> float:
    """k/(k-1) (1 - trace(C) / sum(C)) for a k x k item covariance matrix C."""
    k = len(cov)
    total = math.fsum(math.fsum(row) for row in cov)
    trace = math.fsum(cov[i][i] for i in range(k))
    if not has_variance(total, trace):
        raise MetricsError("the total score has no variance: alpha is undefined")
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


# --- service-quality surveys --------------------------------------------------------------------
# Gap scores (SERVQUAL), the zone of tolerance, NPS, CES and importance-performance. Every figure
# carries its n; a report hides a figure below its minimum n (``MIN_N``, the usual organisational
# rule) but the functions compute it whenever it is defined.

MIN_N = 10
"""The least number of respondents behind a survey figure before a report shows it."""


class MeanInterval(TypedDict):
    """A mean with its Student-t interval (:func:`mean_interval`)."""

    n: int
    mean: float
    sd: float
    se: float
    ci: tuple[float, float]


class NetPromoter(TypedDict):
    """Result of :func:`net_promoter`; ``nps``, ``se`` and ``ci`` are in points (-100..100)."""

    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float
    se: float
    ci: tuple[float, float]


class ToleranceShare(TypedDict):
    """Result of :func:`tolerance_zone`: shares (0..1) of respondents below, inside and above
    their zone of tolerance, the inside share with its Wilson interval."""

    n: int
    below: float
    inside: float
    above: float
    ci: tuple[float, float]


class IPAPoint(TypedDict):
    """One attribute of an importance-performance grid."""

    name: str
    importance: float
    performance: float
    n: int
    quadrant: Literal["concentrate", "keep_up", "low_priority", "overkill"]


class IPAGrid(TypedDict):
    """Result of :func:`importance_performance`: the points and the mean lines."""

    points: list[IPAPoint]
    importance_mean: float
    performance_mean: float


def enough(n: int, min_n: int = MIN_N) -> bool:
    """Whether n respondents are enough to show a figure (``min_n`` >= 1)."""
    if _count(min_n, "min_n") < 1:
        raise MetricsError(f"min_n must be >= 1, got {min_n}")
    return _count(n, "n") >= min_n


def t_critical(df: float, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value with ``df`` degrees of freedom: t^2 follows
    F(1, df), so t = sqrt(F_{confidence}(1, df))."""
    d = _finite(df, "df")
    if d <= 0.0:
        raise MetricsError(f"df must be > 0, got {df!r}")
    return math.sqrt(_special.f_isf(1.0 - _confidence(confidence), 1.0, d))


def _values(values: Iterable[float | None]) -> list[float]:
    """The present values (None and NaN are missing), checked."""
    return [x for x in _aligned(list(values)) if x is not None]


_WHOLE = frozenset({int, type(None)})
_INT = frozenset({int})
_REAL = frozenset({int, float, type(None)})


def _whole(rows: Iterable[Iterable[object]]) -> bool:
    """Every cell an int or None (survey answers): nothing to check or convert. At C speed."""
    return set(map(type, itertools.chain.from_iterable(rows))) <= _WHOLE


def _plain(v: object) -> bool:
    """A present finite int or float, or None: needs no conversion (the fast path)."""
    return v is None or type(v) is int or (type(v) is float and v - v == 0.0)


def _mean_variance(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and variance (divisor n - 1) of n >= 2 finite numbers."""
    n = len(xs)
    if set(map(type, xs)) <= _INT:  # whole numbers: the sums are exact integers
        total = sum(xs)
        return total / n, (n * sum(map(operator.mul, xs, xs)) - total * total) / (n * (n - 1))
    mean = math.fsum(xs) / n
    deviations = [x - mean for x in xs]
    return mean, math.fsum(map(operator.mul, deviations, deviations)) / (n - 1)


def mean_interval(values: Iterable[float | None], confidence: float = 0.95) -> MeanInterval:
    """Mean of the present values (None and NaN are missing) with the Student-t interval
    mean +- t_{n-1} sd / sqrt(n), sd with divisor n - 1. Needs n >= 2."""
    xs = _values(values)
    n = len(xs)
    if n < 2:
        raise MetricsError(f"a mean with an interval needs at least 2 values, got {n}")
    mean, variance = _mean_variance(xs)
    sd = math.sqrt(variance)
    se = sd / math.sqrt(n)
    half = t_critical(n - 1, confidence) * se
    return {"n": n, "mean": mean, "sd": sd, "se": se, "ci": (mean - half, mean + half)}


def paired_difference(
    first: Sequence[float | None], second: Sequence[float | None], confidence: float = 0.95
) -> MeanInterval:
    """Mean of first - second over the respondents with both (the paired t interval), e.g. a
    SERVQUAL gap (perception - expectation), adequacy (perception - adequate) or superiority
    (perception - desired)."""
    if len(first) != len(second):
        raise MetricsError(f"{len(first)} and {len(second)} values: a pair per respondent")
    diffs = [
        a - b
        for a, b in zip(_aligned(first), _aligned(second), strict=True)
        if a is not None and b is not None
    ]
    return mean_interval(diffs, confidence)


def _aligned(values: Sequence[float | None]) -> list[float | None]:
    kinds = set(map(type, values))
    if kinds <= _WHOLE:
        return list(values)
    if kinds <= _REAL and math.isfinite(sum(v for v in values if v is not None)):
        return list(values)  # a NaN or an infinity would make the sum not finite
    if all(map(_plain, values)):
        return list(values)
    return [None if v is None else _present(v, i, 0) for i, v in enumerate(values)]


def row_means(rows: Sequence[Sequence[float | None]]) -> list[float | None]:
    """Per respondent, the mean of the items they answered (None when they answered none): a
    dimension's score from its items."""
    out: list[float | None] = []
    whole = _whole(rows)
    for row in rows:
        if whole and None not in row:
            out.append(sum(row) / len(row))  # type: ignore[arg-type]
            continue
        present = [v for v in (row if whole else _aligned(row)) if v is not None]
        if not present:
            out.append(None)
        else:  # a sum of ints is exact
            out.append((sum(present) if whole else math.fsum(present)) / len(present))
    return out


def tolerance_zone(
    perception: Sequence[float | None],
    adequate: Sequence[float | None],
    desired: Sequence[float | None],
    confidence: float = 0.95,
) -> ToleranceShare:
    """Shares of respondents whose perception lies below their adequate level, inside the zone
    of tolerance (adequate <= perception <= desired) and above their desired level, over the
    respondents with all three; the inside share with its Wilson interval."""
    if not len(perception) == len(adequate) == len(desired):
        raise MetricsError("perception, adequate and desired need one value per respondent")
    below = inside = above = 0
    for p, a, d in zip(_aligned(perception), _aligned(adequate), _aligned(desired), strict=True):
        if p is None or a is None or d is None:
            continue
        if p < a:
            below += 1
        elif p > d:
            above += 1
        else:
            inside += 1
    n = below + inside + above
    if n == 0:
        raise MetricsError("no respondent answered perception, adequate and desired")
    return {
        "n": n,
        "below": below / n,
        "inside": inside / n,
        "above": above / n,
        "ci": wilson(inside, n, confidence),
    }


def net_promoter(scores: Iterable[float | None], confidence: float = 0.95) -> NetPromoter:
    """Net Promoter Score of 0..10 answers: 100 (share of 9-10 - share of 0-6).

    Its standard error is that of a difference of two shares of one multinomial sample,
    Var(p+ - p-) = (p+ + p- - (p+ - p-)^2) / n, and the interval the normal one,
    NPS +- z SE (in points), clipped to [-100, 100].
    """
    promoters = passives = detractors = 0
    for i, x in enumerate(_aligned(list(scores))):
        if x is None:
            continue
        if x != int(x) or not 0 <= x <= 10:
            raise MetricsError(f"answer {i}: {x!r} is not a 0..10 score")
        if x >= 9:
            promoters += 1
        elif x >= 7:
            passives += 1
        else:
            detractors += 1
    n = promoters + passives + detractors
    if n == 0:
        raise MetricsError("no answers: the NPS is undefined")
    pp, pd = promoters / n, detractors / n
    score = pp - pd
    se = math.sqrt(max(0.0, pp + pd - score * score) / n)
    half = _z(confidence) * se
    return {
        "n": n,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "nps": 100.0 * score,
        "se": 100.0 * se,
        "ci": (100.0 * max(-1.0, score - half), 100.0 * min(1.0, score + half)),
    }


def pearson(x: Sequence[float | None], y: Sequence[float | None]) -> tuple[float, int]:
    """Pearson's r over the pairs where both are present: (r, n). Needs n >= 3 and variance."""
    if len(x) != len(y):
        raise MetricsError(f"{len(x)} and {len(y)} values: a pair per respondent")
    pairs = [
        (a, b)
        for a, b in zip(_aligned(x), _aligned(y), strict=True)
        if a is not None and b is not None
    ]
    n = len(pairs)
    if n < 3:
        raise MetricsError(f"a correlation needs at least 3 pairs, got {n}")
    mx = math.fsum(a for a, _ in pairs) / n
    my = math.fsum(b for _, b in pairs) / n
    sxx = math.fsum((a - mx) ** 2 for a, _ in pairs)
    syy = math.fsum((b - my) ** 2 for _, b in pairs)
    if sxx <= 0.0 or syy <= 0.0:
        raise MetricsError("no variance: the correlation is undefined")
    sxy = math.fsum((a - mx) * (b - my) for a, b in pairs)
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy))), n


def importance_performance(
    attributes: Mapping[str, tuple[float, float, int]],
) -> IPAGrid:
    """An importance-performance grid: ``attributes`` maps a name to (importance, performance,
    n); importance is stated (the mean importance answer) or derived (the correlation of the
    attribute's score with overall satisfaction). The mean lines are the plain means over the
    attributes; a point on a line counts as above it. Quadrants (Martilla and James 1977):
    high importance and low performance "concentrate", high both "keep_up", low both
    "low_priority", low importance and high performance "overkill"."""
    if not attributes:
        raise MetricsError("no attributes: the grid is empty")
    items = [
        (name, _finite(i, f"importance of {name}"), _finite(p, f"performance of {name}"), n)
        for name, (i, p, n) in attributes.items()
    ]
    im = math.fsum(i for _, i, _, _ in items) / len(items)
    pm = math.fsum(p for _, _, p, _ in items) / len(items)
    points: list[IPAPoint] = []
    for name, i, p, n in items:
        high_i, high_p = i >= im, p >= pm
        quadrant: Literal["concentrate", "keep_up", "low_priority", "overkill"] = (
            ("keep_up" if high_p else "concentrate")
            if high_i
            else ("overkill" if high_p else "low_priority")
        )
        points.append(
            {"name": name, "importance": i, "performance": p, "n": n, "quadrant": quadrant}
        )
    return {"points": points, "importance_mean": im, "performance_mean": pm}


def alpha_complete(rows: Sequence[Sequence[float]]) -> float:
    """Cronbach's alpha of respondents x items with no missing score, from the item variances
    and the variance of the total, k/(k-1) (1 - sum var_i / var_total): the same figure as
    :func:`cronbach_alpha` in O(n k) instead of O(n k^2)."""
    matrix = item_matrix(rows) if not _whole(rows) or len(rows) < 2 else [list(r) for r in rows]
    if any(None in row for row in matrix):
        raise MetricsError("alpha_complete needs every score present")
    if len(matrix[0]) < 2 or any(len(row) != len(matrix[0]) for row in matrix):
        raise MetricsError("at least 2 items, the same in every row, are needed")
    k = len(matrix[0])
    whole = _whole(matrix)
    columns = [[row[j] for row in matrix] for j in range(k)]
    trace = math.fsum(_mean_variance(c)[1] for c in columns)  # type: ignore[arg-type]
    totals = [sum(row) if whole else math.fsum(row) for row in matrix]  # type: ignore[arg-type]
    total = _mean_variance(totals)[1]
    if not has_variance(total, trace):
        raise MetricsError("the total score has no variance: alpha is undefined")
    return (k / (k - 1)) * (1.0 - trace / total)
