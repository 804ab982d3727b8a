"""Cost of the ratepad.metrics calls a report page makes, next to scipy/statsmodels/pingouin doing
the same in the same run.

- a funnel plot: limits at 95 % and 99.8 % for 500 units (n from 10 to 1,000,000, p0 = 0.85);
- a ranking table: 500 Wilson intervals and 500 period-on-period comparisons;
- a questionnaire: Cronbach's alpha with Feldt's interval for 1,000 respondents x 20 items.

    python bench/bench_metrics.py [--repeat 5]

The reference libraries are in the ``dev`` extra (not needed by the package at run time).
Figures are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from ratepad import metrics


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    sizes = sorted({int(10 ** rng.uniform(1, 6)) for _ in range(500)})
    units = [(rng.randint(0, n), n) for n in sizes]
    pairs = [(k, n, rng.randint(0, n), n) for k, n in units]
    gen = np.random.default_rng(7)
    base = gen.integers(1, 6, size=(1000, 1))
    scores = np.clip(base + gen.integers(-2, 3, size=(1000, 20)), 1, 5).astype(float)
    scores[gen.random(scores.shape) < 0.02] = np.nan
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in scores]
    frame = pd.DataFrame(scores)

    def funnel_ours() -> None:
        for n in sizes:
            metrics.funnel_limits(0.85, n, 0.95)
            metrics.funnel_limits(0.85, n, 0.998)

    def funnel_scipy() -> None:
        for n in sizes:
            for c in (0.95, 0.998):
                for q in ((1 - c) / 2, (1 + c) / 2):
                    r = stats.binom.ppf(q, n, 0.85)
                    at, below = stats.binom.cdf([r, r - 1], n, 0.85)
                    _ = (r - (at - q) / (at - below)) / n

    def table_ours() -> None:
        for (k, n), (k1, n1, k2, n2) in zip(units, pairs, strict=True):
            metrics.wilson(k, n)
            metrics.two_proportions(k1, n1, k2, n2)

    def table_statsmodels() -> None:
        for (k, n), (k1, n1, k2, n2) in zip(units, pairs, strict=True):
            proportion_confint(k, n, method="wilson")
            if 0 < k1 + k2 < n1 + n2:
                proportions_ztest([k1, k2], [n1, n2])
            confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")

    cases = [
        ("funnel plot, 500 units x 2 limits x 2 levels", funnel_ours, funnel_scipy, "scipy"),
        ("ranking table, 500 Wilson + 500 comparisons", table_ours, table_statsmodels,
         "statsmodels"),
        ("Cronbach's alpha + Feldt, 1,000 x 20, 2 % missing",
         lambda: metrics.cronbach_alpha(rows), lambda: pg.cronbach_alpha(frame), "pingouin"),
    ]  # fmt: skip
    print("| what | ratepad.metrics | reference | reference library |")
    print("|---|---|---|---|")
    for label, ours, theirs, library in cases:
        a = best(ours, args.repeat)
        b = best(theirs, args.repeat)
        print(f"| {label} | {a * 1e3:.1f} ms | {b * 1e3:.1f} ms | {library} |")


if __name__ == "__main__":
    main()
