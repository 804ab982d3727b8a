"""ratepad.metrics against scipy, statsmodels and pingouin, and against the published figures in
shared/reference-data (metrics_reference.json, pingouin's Cronbach datasets)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.proportion import test_proportions_2indep as score_test_2indep

from ratepad import metrics
from ratepad.errors import MetricsError, RatepadError
from ratepad.stats import special as _special

TOL = 1e-9
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(
    os.environ.get("RATEPAD_REFERENCE_DATA", ROOT.parent / "shared" / "reference-data")
)

confidences = st.one_of(st.sampled_from([0.95, 0.99, 0.998, 0.9, 0.8]), st.floats(0.5, 0.999))


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference data {path} is missing (set RATEPAD_REFERENCE_DATA)")
    return path


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reference_file("metrics_reference.json").read_text("utf-8"))
    return data


def wide_rows(name: str) -> list[list[float | None]]:
    with reference_file(name).open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    return [[float(v) if v.strip() else None for v in line] for line in lines[1:] if line]


def close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


# --- published figures --------------------------------------------------------------------------


def test_happy_index_4_scale(published: dict[str, Any]) -> None:
    ref = published["happy_index_4_scale"]
    counts = dict(zip([4, 3, 2, 1], ref["counts_most_positive_first"], strict=True))
    index = metrics.level_index(counts, metrics.spaced_values(4))
    assert abs(index - ref["index"]) < 1e-5  # published with 5 decimals (truncated)
    assert close(index, 100 * (126 + 60 * 2 / 3 + 16 / 3) / 219)


def test_happy_index_5_scale(published: dict[str, Any]) -> None:
    ref = published["happy_index_5_scale"]
    counts = dict(zip([5, 4, 3, 2, 1], ref["counts_most_positive_first"], strict=True))
    assert close(metrics.level_index(counts, metrics.spaced_values(5)), ref["index"])
    assert close(metrics.level_index(counts, {s: float(s) for s in counts}), ref["mean_1_to_5"])


def test_five_point_example(published: dict[str, Any]) -> None:
    ref = published["five_point_example"]
    counts = {int(s): c for s, c in ref["counts"].items()}
    values = {int(s): v for s, v in ref["values"].items()}
    assert close(metrics.level_index(counts, values), ref["index"])
    assert close(metrics.csat(counts, top=2), ref["csat_top2"])
    k, n = metrics.top_count(counts, 2)
    lo, hi = metrics.wilson(k, n, 0.95)
    assert [round(lo, 5), round(hi, 5)] == ref["wilson_95"]


def test_cronbach_long_published(published: dict[str, Any]) -> None:
    ref = published["cronbach_pingouin"]
    long = pd.read_csv(reference_file(ref["file"]))
    wide = long.pivot(index="Subj", columns="Items", values="Scores")
    alpha, (lo, hi) = metrics.cronbach_alpha(wide.to_numpy().tolist())
    assert close(alpha, ref["alpha"], 1e-12)
    assert [round(lo, 3), round(hi, 3)] == ref["ci_95"]


def test_cronbach_wide_missing_published(published: dict[str, Any]) -> None:
    ref = published["cronbach_wide_missing_pingouin"]
    rows = wide_rows(ref["file"])
    alpha, (lo, hi) = metrics.cronbach_alpha(rows)
    assert close(alpha, ref["pairwise"]["alpha"], 1e-12)
    assert [round(lo, 3), round(hi, 3)] == ref["pairwise"]["ci_95"]
    alpha_l, (lo_l, hi_l) = metrics.cronbach_alpha(rows, missing="listwise")
    assert close(alpha_l, ref["listwise"]["alpha"], 1e-12)
    # pingouin keeps n = all 12 rows for the interval after listwise deletion; our listwise
    # interval uses the 9 complete rows, the published one is Feldt's with n = 12:
    lo12, hi12 = metrics.feldt_interval(alpha_l, len(rows), len(rows[0]))
    assert [round(lo12, 3), round(hi12, 3)] == ref["listwise"]["ci_95"]
    complete = pd.DataFrame(rows, dtype=float).dropna()
    pg_alpha, pg_ci = pg.cronbach_alpha(complete)
    assert close(alpha_l, pg_alpha)
    assert abs(lo_l - pg_ci[0]) <= 5e-4 + TOL and abs(hi_l - pg_ci[1]) <= 5e-4 + TOL
    assert close(lo_l, 1 - (1 - alpha_l) * stats.f.isf(0.025, 8, 80))
    assert close(hi_l, 1 - (1 - alpha_l) * stats.f.isf(0.975, 8, 80))


# --- special functions --------------------------------------------------------------------------


@settings(max_examples=50)
@given(confidences)
def test_normal_critical_value(c: float) -> None:
    assert close(metrics._z(c), stats.norm.ppf(0.5 + c / 2), 1e-12)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(2, 80),
    st.one_of(st.sampled_from([0.025, 0.005, 0.001, 0.05, 0.5]), st.floats(1e-5, 0.999)),
)
def test_f_quantiles(d1: int, k: int, q: float) -> None:
    d2 = d1 * (k - 1)
    assert close(_special.f_isf(q, d1, d2), stats.f.isf(q, d1, d2))
    assert close(_special.f_ppf(q, d1, d2), stats.f.ppf(q, d1, d2))


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 100_000), st.floats(1e-4, 1 - 1e-4), st.floats(-4.0, 4.0))
def test_binomial_cdf(n: int, p: float, offset: float) -> None:
    r = math.floor(n * p + offset * math.sqrt(n * p * (1 - p)))
    assert close(_special.binom_cdf(r, n, p), stats.binom.cdf(r, n, p))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 100_000),
    st.floats(1e-4, 1 - 1e-4),
    st.one_of(st.sampled_from([0.001, 0.025, 0.975, 0.999]), st.floats(1e-3, 0.999)),
)
def test_binomial_quantile(n: int, p: float, q: float) -> None:
    r = _special.binom_ppf(q, n, p)
    ref = int(stats.binom.ppf(q, n, p))
    # Where P(R <= r) equals q to rounding the quantile is a coin toss for any implementation.
    assume(all(abs(stats.binom.cdf(j, n, p) - q) > 1e-12 for j in {r, ref}))
    assert r == ref


@pytest.mark.parametrize(
    ("n", "p"), [(2_000_000, 0.9), (5_000_000, 0.02), (1_000_000, 0.5), (3_000_000, 1e-6)]
)
def test_binomial_large_n(n: int, p: float) -> None:
    for q in (0.001, 0.025, 0.975, 0.999):
        r = _special.binom_ppf(q, n, p)
        assert r == int(stats.binom.ppf(q, n, p))
        assert close(_special.binom_cdf(r, n, p), stats.binom.cdf(r, n, p))


# --- indexes and shares -------------------------------------------------------------------------

count_maps = st.dictionaries(st.integers(1, 7), st.integers(0, 10_000), min_size=1).filter(
    lambda d: sum(d.values()) > 0
)


@settings(max_examples=50)
@given(count_maps, st.data())
def test_level_index_is_the_weighted_mean(counts: dict[int, int], data: st.DataObject) -> None:
    values = {s: data.draw(st.floats(-100, 100)) for s in counts}
    scores = sorted(counts)
    expected = np.average([values[s] for s in scores], weights=[counts[s] for s in scores])
    assert close(metrics.level_index(counts, values), float(expected))


@settings(max_examples=50)
@given(count_maps, st.data())
def test_csat_is_the_top_share(counts: dict[int, int], data: st.DataObject) -> None:
    top = data.draw(st.integers(1, len(counts)))
    chosen = sorted(counts)[-top:]
    expected = sum(counts[s] for s in chosen) / sum(counts.values())
    assert close(metrics.csat(counts, top), expected)


def test_csat_with_levels_not_all_counted() -> None:
    counts = {5: 10, 3: 5, 1: 5}  # nobody chose 4 or 2
    assert metrics.csat(counts, 2, levels=range(1, 6)) == 0.5
    assert metrics.csat(counts, 2) == 0.75  # without levels the present scores are the scale
    with pytest.raises(MetricsError, match="not levels"):
        metrics.csat({6: 1}, 2, levels=range(1, 6))


# --- proportions --------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1_000_000), st.data(), confidences)
def test_wilson_equals_statsmodels(n: int, data: st.DataObject, c: float) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = metrics.wilson(k, n, c)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=1 - c, method="wilson")
    assert close(lo, ref_lo) and close(hi, ref_hi)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels' ratio and odds for k2 = 0
@settings(max_examples=80, deadline=None)
@given(st.integers(1, 100_000), st.integers(1, 100_000), st.data(), confidences)
def test_two_proportions_equals_statsmodels(
    n1: int, n2: int, data: st.DataObject, c: float
) -> None:
    k1 = data.draw(st.integers(0, n1))
    k2 = data.draw(st.integers(0, n2))
    assume(0 < k1 + k2 < n1 + n2)  # the pooled variance is 0 otherwise (tested below)
    result = metrics.two_proportions(k1, n1, k2, n2, c)
    z, p = proportions_ztest([k1, k2], [n1, n2])
    assert close(result["z"], float(z)) and close(result["p"], float(p))
    score = score_test_2indep(k1, n1, k2, n2, method="score", correction=False, return_results=True)
    assert close(result["z"], float(score.statistic)) and close(result["p"], float(score.pvalue))
    lo, hi = confint_proportions_2indep(
        k1, n1, k2, n2, method="newcomb", compare="diff", alpha=1 - c
    )
    assert close(result["ci"][0], float(lo)) and close(result["ci"][1], float(hi))
    assert close(result["diff"], k1 / n1 - k2 / n2)


def test_two_proportions_without_pooled_variance() -> None:
    for k1, n1, k2, n2 in [(0, 10, 0, 20), (10, 10, 20, 20)]:
        result = metrics.two_proportions(k1, n1, k2, n2)
        assert (result["z"], result["p"], result["diff"]) == (0.0, 1.0, 0.0)
        lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        assert close(result["ci"][0], float(lo)) and close(result["ci"][1], float(hi))


# --- shrinkage ----------------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.integers(0, 100_000), st.data(), st.floats(0.001, 0.999), st.floats(0.01, 1000))
def test_shrunk_rate_is_the_beta_posterior_mean(
    n: int, data: st.DataObject, p0: float, w: float
) -> None:
    k = data.draw(st.integers(0, n))
    posterior = stats.beta(w * p0 + k, w * (1 - p0) + n - k)
    assert close(metrics.shrunk_rate(k, n, p0, w), float(posterior.mean()))


@settings(max_examples=50)
@given(st.floats(0, 100), st.integers(0, 100_000), st.floats(0, 100), st.floats(0, 1000))
def test_shrunk_index_is_the_weighted_mean(index: float, n: int, prior: float, w: float) -> None:
    assume(n + w > 0)
    expected = float(np.average([index, prior], weights=[n, w]))
    assert close(metrics.shrunk_index(index, n, prior, w), expected)


def test_shrinkage_edges() -> None:
    assert metrics.shrunk_rate(0, 0, 0.8, 5) == 0.8
    assert metrics.shrunk_rate(3, 4, 0.8, 0) == 0.75
    assert metrics.shrunk_index(12.0, 0, 70.0, 10) == 70.0
    for call in (
        lambda: metrics.shrunk_rate(0, 0, 0.5, 0),
        lambda: metrics.shrunk_index(1.0, 0, 1.0, 0),
        lambda: metrics.shrunk_rate(1, 2, 1.5, 1),
        lambda: metrics.shrunk_rate(1, 2, 0.5, -1),
        lambda: metrics.shrunk_rate(3, 2, 0.5, 1),
    ):
        with pytest.raises(MetricsError):
            call()


# --- funnel limits ------------------------------------------------------------------------------


def spiegelhalter_limit(q: float, n: int, p0: float) -> float:
    """Transcription of Spiegelhalter's interpolated binomial limit on scipy's binomial."""
    r = int(stats.binom.ppf(q, n, p0))
    at_r = stats.binom.cdf(r, n, p0)
    below = stats.binom.cdf(r - 1, n, p0)
    return min(1.0, max(0.0, (r - (at_r - q) / (at_r - below)) / n))


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 50_000), st.floats(0.001, 0.999), confidences)
def test_funnel_limits_equal_the_scipy_transcription(n: int, p0: float, c: float) -> None:
    lo, hi = metrics.funnel_limits(p0, n, c)
    tail = (1 - c) / 2
    assert close(lo, spiegelhalter_limit(tail, n, p0))
    assert close(hi, spiegelhalter_limit(1 - tail, n, p0))
    assert 0.0 <= lo <= hi <= 1.0


def test_funnel_limits_narrow_with_n_and_widen_with_confidence() -> None:
    widths = [np.subtract(*metrics.funnel_limits(0.85, n, 0.95)[::-1]) for n in (20, 200, 2000)]
    assert widths[0] > widths[1] > widths[2] > 0
    lo95, hi95 = metrics.funnel_limits(0.85, 500, 0.95)
    lo998, hi998 = metrics.funnel_limits(0.85, 500, 0.998)
    assert lo998 < lo95 < 0.85 < hi95 < hi998
    assert metrics.funnel_limits(0.0, 10, 0.95) == (0.0, 0.0)
    assert metrics.funnel_limits(1.0, 10, 0.95) == (1.0, 1.0)
    assert metrics.funnel_limits(0.01, 5, 0.95)[0] == 0.0  # r = 0: clipped at 0


# --- Cronbach's alpha ---------------------------------------------------------------------------


@st.composite
def score_matrices(draw: st.DrawFn, missing: bool) -> list[list[float | None]]:
    """Likert-like scores 0..6 (a respondent's level plus item noise), some missing.

    Shapes and gap rates come from hypothesis, the cells from a seeded generator (drawing
    hundreds of cells one by one would dominate the test's time)."""
    n = draw(st.integers(3, 40))
    k = draw(st.integers(2, 12))
    gap_rate = draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])) if missing else 0.0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = rng.integers(0, 7, size=(n, 1))
    scores = np.clip(base + rng.integers(-3, 4, size=(n, k)), 0, 6).astype(float)
    gaps = rng.random((n, k)) < gap_rate
    return [[None if gaps[i, j] else float(scores[i, j]) for j in range(k)] for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(score_matrices(missing=True), confidences)
def test_cronbach_pairwise_equals_pingouin(rows: list[list[float | None]], c: float) -> None:
    frame = pd.DataFrame(rows, dtype=float)
    cov = frame.cov()
    try:
        alpha, (lo, hi) = metrics.cronbach_alpha(rows, c)
    except MetricsError:
        # Undefined: a pair answered together fewer than twice (pandas: NaN) or no variance.
        assert cov.isna().any().any() or not cov.to_numpy().sum() > 0
        return
    assume(cov.to_numpy().sum() > 1e-6 * np.trace(cov.to_numpy()))
    ref_alpha, ref_ci = pg.cronbach_alpha(frame, ci=c)
    assert close(alpha, float(ref_alpha))
    n, k = frame.shape
    assert close(lo, 1 - (1 - alpha) * stats.f.isf((1 - c) / 2, n - 1, (n - 1) * (k - 1)))
    assert close(hi, 1 - (1 - alpha) * stats.f.isf(1 - (1 - c) / 2, n - 1, (n - 1) * (k - 1)))
    assert abs(lo - ref_ci[0]) <= 5e-4 + TOL and abs(hi - ref_ci[1]) <= 5e-4 + TOL


@settings(max_examples=30, deadline=None)
@given(score_matrices(missing=True))
def test_cronbach_listwise_equals_pingouin_on_complete_rows(
    rows: list[list[float | None]],
) -> None:
    complete = pd.DataFrame(rows, dtype=float).dropna()
    try:
        alpha, (lo, _hi) = metrics.cronbach_alpha(rows, missing="listwise")
    except MetricsError:
        assert len(complete) < 2 or not complete.cov().to_numpy().sum() > 0
        return
    assume(complete.cov().to_numpy().sum() > 1e-6 * np.trace(complete.cov().to_numpy()))
    ref_alpha, _ = pg.cronbach_alpha(complete)
    assert close(alpha, float(ref_alpha))
    n, k = complete.shape
    assert close(lo, 1 - (1 - alpha) * stats.f.isf(0.025, n - 1, (n - 1) * (k - 1)))


def test_cronbach_errors() -> None:
    with pytest.raises(MetricsError, match="2 respondents"):
        metrics.cronbach_alpha([[1.0, 2.0]])
    with pytest.raises(MetricsError, match="2 items"):
        metrics.cronbach_alpha([[1.0], [2.0]])
    with pytest.raises(MetricsError, match="row 1 has 1 items"):
        metrics.cronbach_alpha([[1.0, 2.0], [1.0]])
    with pytest.raises(MetricsError, match="no variance"):
        metrics.cronbach_alpha([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(MetricsError, match="fewer than 2"):
        metrics.cronbach_alpha([[1.0, None], [None, 2.0], [3.0, 4.0]])
    with pytest.raises(MetricsError, match="infinite"):
        metrics.cronbach_alpha([[1.0, math.inf], [2.0, 3.0]])
    with pytest.raises(MetricsError, match="missing must be"):
        metrics.cronbach_alpha([[1.0, 2.0], [2.0, 3.0]], missing="mean")  # type: ignore[arg-type]
    nan_rows = [[1.0, 2.0, math.nan], [2.0, 2.0, 3.0], [3.0, 4.0, 4.0], [4.0, 3.0, 5.0]]
    none_rows = [[1.0, 2.0, None], *nan_rows[1:]]
    assert metrics.cronbach_alpha(nan_rows) == metrics.cronbach_alpha(none_rows)


# --- edge cases shared by all -------------------------------------------------------------------


@pytest.mark.parametrize("c", [0.0, 1.0, -0.5, 1.5, math.nan, math.inf])
def test_confidence_outside_the_unit_interval(c: float) -> None:
    calls = [
        lambda: metrics.wilson(1, 2, c),
        lambda: metrics.two_proportions(1, 2, 1, 3, c),
        lambda: metrics.funnel_limits(0.5, 10, c),
        lambda: metrics.cronbach_alpha([[1.0, 2.0], [2.0, 4.0], [3.0, 3.0]], c),
        lambda: metrics.feldt_interval(0.7, 10, 3, c),
    ]
    for call in calls:
        with pytest.raises(MetricsError, match="confidence"):
            call()


def test_zero_and_full_counts() -> None:
    lo, hi = metrics.wilson(0, 25)
    assert lo == 0.0 and close(hi, proportion_confint(0, 25, method="wilson")[1])
    lo, hi = metrics.wilson(25, 25)
    assert hi == 1.0 and close(lo, proportion_confint(25, 25, method="wilson")[0])
    for call in (
        lambda: metrics.wilson(0, 0),
        lambda: metrics.two_proportions(0, 0, 1, 2),
        lambda: metrics.two_proportions(1, 2, 0, 0),
        lambda: metrics.funnel_limits(0.5, 0, 0.95),
    ):
        with pytest.raises(MetricsError, match=r"n[12]? = 0"):
            call()


def test_bad_counts() -> None:
    for call in (
        lambda: metrics.wilson(3, 2),
        lambda: metrics.wilson(-1, 2),
        lambda: metrics.wilson(1.5, 2),  # type: ignore[arg-type]
        lambda: metrics.wilson(True, 2),
        lambda: metrics.level_index({5: -1, 4: 3}, {5: 100, 4: 75}),
    ):
        with pytest.raises(MetricsError):
            call()
    assert metrics.wilson(np.int64(3), np.int64(10)) == metrics.wilson(3, 10)  # type: ignore[arg-type]


def test_empty_counts_and_missing_levels() -> None:
    with pytest.raises(MetricsError, match="no ratings"):
        metrics.level_index({}, {5: 100.0})
    with pytest.raises(MetricsError, match="no ratings"):
        metrics.level_index({5: 0, 4: 0}, {5: 100.0, 4: 75.0})
    with pytest.raises(MetricsError, match="no ratings"):
        metrics.csat({5: 0, 1: 0})
    with pytest.raises(MetricsError, match="no ratings"):
        metrics.csat({})
    with pytest.raises(MetricsError, match="no ratings"):
        metrics.csat({}, levels=range(1, 6))
    with pytest.raises(MetricsError, match=r"no level value for score\(s\) \[3\]"):
        metrics.level_index({5: 4, 3: 1}, {5: 100.0, 4: 75.0})
    with pytest.raises(MetricsError, match="top must lie"):
        metrics.csat({5: 1, 4: 1}, top=3)
    with pytest.raises(MetricsError, match="at least 2 levels"):
        metrics.spaced_values(1)


def test_errors_belong_to_the_tree() -> None:
    with pytest.raises(RatepadError):
        metrics.wilson(0, 0)
    with pytest.raises(ValueError, match="= 0"):
        metrics.wilson(0, 0)
