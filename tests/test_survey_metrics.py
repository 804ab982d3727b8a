"""The survey metrics of ratepad.metrics against scipy and statsmodels (or the formula computed
independently with numpy) to 1e-9 on generated data, and alpha against the published figures."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW

from ratepad import metrics
from ratepad.errors import MetricsError

TOL = 1e-9
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(
    os.environ.get("RATEPAD_REFERENCE_DATA", ROOT.parent / "shared" / "reference-data")
)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


def likert(rng: np.random.Generator, n: int, low: int = 1, high: int = 7) -> list[int]:
    return [int(x) for x in rng.integers(low, high + 1, size=n)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_critical_and_mean_interval_equal_scipy_and_statsmodels(
    seed: int, confidence: float
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    xs = likert(rng, n)
    if seed == 0:
        xs = [float(x) + 0.25 for x in xs]  # floats too
    got = metrics.mean_interval(xs, confidence)
    assert close(
        metrics.t_critical(n - 1, confidence), float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    )
    lo, hi = DescrStatsW(np.array(xs, dtype=float)).tconfint_mean(alpha=1 - confidence)
    assert got["n"] == n
    assert close(got["mean"], float(np.mean(xs)))
    assert close(got["sd"], float(np.std(xs, ddof=1)))
    assert close(got["se"], float(stats.sem(xs)))
    assert close(got["ci"][0], float(lo)) and close(got["ci"][1], float(hi))


@pytest.mark.parametrize("seed", range(6))
def test_paired_difference_is_the_paired_t_interval(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(5, 300))
    p = likert(rng, n)
    e: list[int | None] = likert(rng, n)
    e[0] = None  # a respondent without the expectation drops out of the pair
    got = metrics.paired_difference(p, e, 0.95)
    pp = np.array(p[1:], dtype=float)
    ee = np.array(e[1:], dtype=float)
    ref = stats.ttest_rel(pp, ee).confidence_interval(0.95)
    assert got["n"] == n - 1
    assert close(got["mean"], float(np.mean(pp - ee)))
    assert close(got["ci"][0], float(ref.low)) and close(got["ci"][1], float(ref.high))


def test_row_means_and_tolerance_zone_against_numpy() -> None:
    rng = np.random.default_rng(7)
    rows = [[int(v) for v in r] for r in rng.integers(1, 8, size=(200, 4))]
    rows[3][1] = None  # type: ignore[call-overload]
    means = metrics.row_means(rows)
    frame = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    assert all(close(a, b) for a, b in zip(means, np.nanmean(frame, axis=1), strict=True))  # type: ignore[arg-type]
    assert metrics.row_means([[None, None]]) == [None]
    p, a, d = (likert(rng, 200) for _ in range(3))
    lo = np.minimum(a, d)
    hi = np.maximum(a, d)
    got = metrics.tolerance_zone(p, lo.tolist(), hi.tolist(), 0.95)
    pv = np.array(p)
    inside = int(np.sum((pv >= lo) & (pv <= hi)))
    assert got["n"] == 200
    assert close(got["inside"], inside / 200)
    assert close(got["below"], float(np.mean(pv < lo)))
    assert close(got["above"], float(np.mean(pv > hi)))
    from statsmodels.stats.proportion import proportion_confint

    wl, wh = proportion_confint(inside, 200, alpha=0.05, method="wilson")
    assert close(got["ci"][0], float(wl)) and close(got["ci"][1], float(wh))


@pytest.mark.parametrize("seed", range(8))
def test_net_promoter_score_and_its_multinomial_variance(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 1000))
    answers = likert(rng, n, 0, 10)
    got = metrics.net_promoter(answers, 0.95)
    counts = np.array([sum(a >= 9 for a in answers), sum(a <= 6 for a in answers)])
    shares = counts / n
    # Var(p+ - p-) from the multinomial covariance matrix (diag(p) - p p^T) / n
    cov = (np.diag(shares) - np.outer(shares, shares)) / n
    contrast = np.array([1.0, -1.0])
    se = math.sqrt(float(contrast @ cov @ contrast))
    z = float(stats.norm.ppf(0.975))
    nps = float(shares[0] - shares[1])
    assert got["n"] == n
    assert got["promoters"] == counts[0] and got["detractors"] == counts[1]
    assert close(got["nps"], 100 * nps)
    assert close(got["se"], 100 * se)
    assert close(got["ci"][0], 100 * max(-1.0, nps - z * se))
    assert close(got["ci"][1], 100 * min(1.0, nps + z * se))
    # the same SE as the mean of +1/0/-1 scores with the divisor n
    scored = np.where(np.array(answers) >= 9, 1.0, np.where(np.array(answers) <= 6, -1.0, 0.0))
    assert close(got["se"], 100 * float(np.std(scored) / math.sqrt(n)))


def test_net_promoter_rejects_answers_off_its_scale() -> None:
    with pytest.raises(MetricsError, match=r"0\.\.10"):
        metrics.net_promoter([3, 11])
    with pytest.raises(MetricsError, match="no answers"):
        metrics.net_promoter([None])


@pytest.mark.parametrize("seed", range(4))
def test_pearson_and_the_importance_performance_grid(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    x = likert(rng, 150)
    y = [min(7, max(1, v + int(rng.integers(-1, 2)))) for v in x]
    r, n = metrics.pearson(x, y)
    assert n == 150 and close(r, float(stats.pearsonr(x, y).statistic))
    attrs = {f"a{i}": (float(rng.normal()), float(rng.normal()), 10 + i) for i in range(6)}
    grid = metrics.importance_performance(attrs)
    im = float(np.mean([v[0] for v in attrs.values()]))
    pm = float(np.mean([v[1] for v in attrs.values()]))
    assert close(grid["importance_mean"], im) and close(grid["performance_mean"], pm)
    for point in grid["points"]:
        i, p, _ = attrs[point["name"]]
        expected = {(True, False): "concentrate", (True, True): "keep_up",
                    (False, False): "low_priority", (False, True): "overkill"}  # fmt: skip
        assert point["quadrant"] == expected[(i >= im, p >= pm)]


def test_alpha_complete_equals_the_pairwise_alpha_and_pingouin() -> None:
    rng = np.random.default_rng(9)
    base = rng.normal(size=(80, 1))
    rows = np.clip(np.rint(4 + base + rng.normal(size=(80, 5))), 1, 7).astype(int).tolist()
    alpha, _ = metrics.cronbach_alpha(rows)
    import pandas as pd

    assert close(metrics.alpha_complete(rows), alpha)
    assert close(metrics.alpha_complete(rows), float(pg.cronbach_alpha(pd.DataFrame(rows))[0]))
    with pytest.raises(MetricsError):
        metrics.alpha_complete([[1, None], [2, 3]])


def test_alpha_complete_on_the_published_reference_data() -> None:
    path = REFERENCE / "cronbach_alpha.csv"
    if not path.is_file():
        pytest.fail(f"reference data {path} is missing (set RATEPAD_REFERENCE_DATA)")
    published = json.loads((REFERENCE / "metrics_reference.json").read_text())["cronbach_pingouin"]
    table: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig") as f:
        for rec in csv.DictReader(f):
            table.setdefault(rec["Subj"], {})[rec["Items"]] = int(float(rec["Scores"]))
    rows = [list(v.values()) for v in table.values()]
    alpha = metrics.alpha_complete(rows)
    assert close(alpha, published["alpha"])
    lo, hi = metrics.feldt_interval(alpha, len(rows), len(rows[0]))
    assert round(lo, 3) == published["ci_95"][0] and round(hi, 3) == published["ci_95"][1]


def test_minimum_n() -> None:
    assert metrics.MIN_N == 10
    assert metrics.enough(10) and not metrics.enough(9)
    assert metrics.enough(3, min_n=3)
    with pytest.raises(MetricsError):
        metrics.enough(5, min_n=0)
