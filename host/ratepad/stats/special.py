"""Special functions behind ``ratepad.metrics``: the regularized incomplete beta function, its
inverse, and the binomial and F distributions built on them.

Plain floats only, so that the host package needs no numerical library at run time. The normal
distribution comes from the standard library (``statistics.NormalDist``, ``math.erfc``).

Method:

- ``ibeta`` evaluates, for the smaller tail, the power series 2F1(a + b, 1; a + 1; x) where
  (a + b) x is small (all terms positive) and the continued fraction (modified Lentz)
  elsewhere, and takes the complement for the other tail. The factor x^a y^b / B(a, b) in front
  is computed without cancellation: for large a and b from Stirling's series written around the
  mode (a log1p form, as in Temme's and DiDonato and Morris's work). Against scipy (Boost) on
  random parameters up to 3e6 the relative error stayed below 1e-13 typically and 3e-10 at
  worst (tails near 1e-4 with one parameter in the millions).
- ``ibeta_inv`` solves I_x(a, b) = p on the smaller tail with Halley steps kept inside a
  bracket that shrinks at every step (bisection when a step would leave it).
- The binomial CDF is I_{1-p}(n - r, r + 1); its quantile is found by bracketing from a
  Cornish-Fisher guess and bisecting on integers. The F quantile maps the beta quantile.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_EPS = 2.220446049250313e-16
_TINY = 1e-300
_CF_TOL = 2.0 * _EPS
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)
_STANDARD_NORMAL = NormalDist()


def _stirling_tail(z: float) -> float:
    """lgamma(z) - ((z - 1/2) ln z - z + ln(2 pi) / 2), for z > 0."""
    if z >= 15.0:
        r = 1.0 / z
        r2 = r * r
        return r * (
            1.0 / 12.0
            - r2
            * (
                1.0 / 360.0
                - r2
                * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 * (1.0 / 1188.0 - r2 * 691.0 / 360360.0)))
            )
        )
    return math.lgamma(z) - ((z - 0.5) * math.log(z) - z + _HALF_LN_2PI)


def _log1pmx(t: float) -> float:
    """log1p(t) - t, accurate for small |t| too (t > -1)."""
    if abs(t) < 0.1:
        # -t^2/2 + t^3/3 - t^4/4 + ...; |t| < 0.1 needs at most 16 terms for full precision.
        term = -t
        total = 0.0
        for k in range(2, 40):
            term *= -t
            add = term / k
            total -= add
            if abs(add) <= _EPS * abs(total):
                break
        return total
    return math.log1p(t) - t


def _log_ratio_minus_linear(weight: float, t: float, ratio: float) -> float:
    """weight * (ln(1 + t) - t), where ratio = 1 + t computed directly for t near -1."""
    if t > -0.5:
        return weight * _log1pmx(t)
    return weight * (math.log(ratio) - t)


def _log_power_terms(a: float, b: float, x: float, y: float) -> float:
    """ln(x^a y^b / B(a, b)) with y = 1 - x given separately (whichever is accurate)."""
    if a >= 15.0 and b >= 15.0:
        # Around the mode x0 = a/(a+b): with lam = (a+b)(x - x0) = b x - a y,
        # a ln(x/x0) + b ln(y/y0) = a log1pmx(lam/a) + b log1pmx(-lam/b), the first-order terms
        # cancelling exactly (and a ln(x/x0) + b ln(y/y0) taken directly far below the mode);
        # ln(x0^a y0^b / B(a, b)) comes from Stirling's series.
        centre = 0.5 * math.log(a / (a + b) * b) - _HALF_LN_2PI
        centre -= _stirling_tail(a) + _stirling_tail(b) - _stirling_tail(a + b)
        lam = b * x - a * y
        return (
            _log_ratio_minus_linear(a, lam / a, x * (a + b) / a)
            + _log_ratio_minus_linear(b, -lam / b, y * (a + b) / b)
            + centre
        )
    ln_x = math.log(x) if x <= 0.5 else math.log1p(-y)
    ln_y = math.log(y) if y <= 0.5 else math.log1p(-x)
    small, large = (a, b) if a <= b else (b, a)
    if large >= 15.0:
        # ln B = lgamma(small) + lgamma(large) - lgamma(small + large), the difference of the
        # two large lgammas written with log1p.
        s = small + large
        ln_ratio = (
            (large - 0.5) * math.log1p(small / large)
            + small * math.log(s)
            - small
            + _stirling_tail(s)
            - _stirling_tail(large)
        )
        ln_beta = math.lgamma(small) - ln_ratio
    else:
        ln_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return a * ln_x + b * ln_y - ln_beta


def _beta_cf(a: float, b: float, x: float, y: float) -> float:
    """Continued fraction of I_x(a, b) (x below the mode), modified Lentz; y = 1 - x."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    # 1 - (a + b) x / (a + 1), written as (a y + 1 - b x) / (a + 1) to avoid cancellation.
    d = (a * y + 1.0 - b * x) / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    max_iter = 1000 + int(20.0 * math.sqrt(max(a, b)))
    tiny = _TINY
    for m in range(1, max_iter + 1):
        # (the Lentz guards written as chained comparisons: this loop is the hot path)
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if -tiny < d < tiny:
            d = tiny
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if -tiny < d < tiny:
            d = tiny
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if -_CF_TOL <= delta - 1.0 <= _CF_TOL:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b})")


_SERIES_LIMIT = 40.0


def _beta_series(a: float, b: float, x: float) -> float:
    """2F1(a + b, 1; a + 1; x), all terms positive: I_x(a, b) = x^a y^b / (a B(a, b)) times this.

    Used where (a + b) x is small, e.g. a small and b in the millions, where the continued
    fraction loses digits to cancellation.
    """
    total = 1.0
    term = 1.0
    n = 0
    while True:
        term *= (a + b + n) * x / (a + 1.0 + n)
        n += 1
        total += term
        if term <= _EPS * total and (a + b + n) * x < a + 1.0 + n:
            return total
        if n > 10_000:
            raise ArithmeticError(f"incomplete beta series did not converge (a={a}, b={b})")


def ibeta(a: float, b: float, x: float, y: float | None = None) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)), each computed on its own side for tail accuracy.

    ``y`` is 1 - x when the caller knows it more accurately than ``1 - x`` rounds.
    """
    if y is None:
        y = 1.0 - x
    if not (a > 0.0 and b > 0.0):
        raise ValueError("ibeta needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0, 1.0
    if y <= 0.0:
        return 1.0, 0.0
    s = a + b
    x_series = x <= 0.5 and s * x <= _SERIES_LIMIT
    y_series = y <= 0.5 and s * y <= _SERIES_LIMIT
    lower_side = x * (s + 2.0) < a + 1.0  # below the mean: the lower tail is the small one
    if lower_side and x_series:
        lower = math.exp(_log_power_terms(a, b, x, y)) * _beta_series(a, b, x) / a
        return lower, 1.0 - lower
    if not lower_side and y_series:
        upper = math.exp(_log_power_terms(b, a, y, x)) * _beta_series(b, a, y) / b
        return 1.0 - upper, upper
    # One parameter small and the other huge, x just beyond the mean towards 0 or 1: the
    # continued fraction cancels there, the series for the other tail does not; it is kept
    # where taking the complement loses no more than three digits.
    if lower_side and y_series:
        upper = math.exp(_log_power_terms(b, a, y, x)) * _beta_series(b, a, y) / b
        if upper <= 0.999:
            return 1.0 - upper, upper
    if not lower_side and x_series:
        lower = math.exp(_log_power_terms(a, b, x, y)) * _beta_series(a, b, x) / a
        if lower <= 0.999:
            return lower, 1.0 - lower
    if lower_side:
        lower = math.exp(_log_power_terms(a, b, x, y)) * _beta_cf(a, b, x, y) / a
        return lower, 1.0 - lower
    upper = math.exp(_log_power_terms(b, a, y, x)) * _beta_cf(b, a, y, x) / b
    return 1.0 - upper, upper


def _beta_density(a: float, b: float, x: float, y: float) -> float:
    return math.exp(_log_power_terms(a, b, x, y)) / (x * y)


def _ibeta_inv_lower(a: float, b: float, p: float) -> tuple[float, float]:
    """x with I_x(a, b) = p (p <= 1/2 in practice), as (x, 1 - x)."""
    # Starting point: Abramowitz and Stegun 26.5.22 for a, b >= 1, else the two tail powers.
    if a >= 1.0 and b >= 1.0:
        z = -_STANDARD_NORMAL.inv_cdf(p)
        lam = (z * z - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = z * math.sqrt(h + lam) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (
            lam + 5.0 / 6.0 - 2.0 / (3.0 * h)
        )
        x = a / (a + b * math.exp(2.0 * w))
    else:
        t = math.exp(a * math.log(a / (a + b))) / a
        u = math.exp(b * math.log(b / (a + b))) / b
        total = t + u
        if p < t / total:
            x = (a * total * p) ** (1.0 / a)
        else:
            x = 1.0 - (b * total * (1.0 - p)) ** (1.0 / b)
    lo, hi = 0.0, 1.0
    if not 0.0 < x < 1.0:
        x = 0.5
    for _ in range(300):
        y = 1.0 - x
        value, _upper = ibeta(a, b, x, y)
        err = value - p
        if err == 0.0:
            break
        if err < 0.0:
            lo = x
        else:
            hi = x
        density = _beta_density(a, b, x, y)
        step = err / density if density > 0.0 else math.inf
        if math.isfinite(step):
            # Halley's correction from d(ln density)/dx.
            curvature = (a - 1.0) / x - (b - 1.0) / y
            step /= 1.0 - 0.5 * min(1.0, max(-1.0, step * curvature))
        new_x = x - step
        if not (lo < new_x < hi) or not math.isfinite(new_x):
            new_x = math.sqrt(lo * hi) if lo > 0.0 and hi < 0.5 else 0.5 * (lo + hi)
            if not lo < new_x < hi:
                new_x = 0.5 * (lo + hi)
        if abs(new_x - x) <= 4.0 * _EPS * new_x or new_x in (lo, hi):
            x = new_x
            break
        x = new_x
    return x, 1.0 - x


def ibeta_inv(a: float, b: float, p: float) -> tuple[float, float]:
    """(x, 1 - x) with I_x(a, b) = p, solved on the smaller tail for accuracy."""
    if not 0.0 < p < 1.0:
        raise ValueError("ibeta_inv needs 0 < p < 1")
    if p <= 0.5:
        return _ibeta_inv_lower(a, b, p)
    y, x = _ibeta_inv_lower(b, a, 1.0 - p)
    return x, y


def ibetac_inv(a: float, b: float, q: float) -> tuple[float, float]:
    """(x, 1 - x) with 1 - I_x(a, b) = q, the upper tail given directly."""
    if not 0.0 < q < 1.0:
        raise ValueError("ibetac_inv needs 0 < q < 1")
    y, x = _ibeta_inv_lower(b, a, q) if q <= 0.5 else ibeta_inv(b, a, q)
    return x, y


def f_ppf(p: float, d1: float, d2: float) -> float:
    """Quantile of the F distribution: P(F <= x) = p."""
    x, y = ibeta_inv(d1 / 2.0, d2 / 2.0, p)
    return (d2 / d1) * (x / y)


def f_isf(q: float, d1: float, d2: float) -> float:
    """Upper quantile of the F distribution: P(F > x) = q."""
    x, y = ibetac_inv(d1 / 2.0, d2 / 2.0, q)
    return (d2 / d1) * (x / y)


def binom_cdf(r: int, n: int, p: float) -> float:
    """P(R <= r) for R ~ Binomial(n, p)."""
    if r < 0:
        return 0.0
    if r >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    # P(R <= r) = 1 - I_p(r + 1, n - r).
    return ibeta(float(r + 1), float(n - r), p, 1.0 - p)[1]


def binom_ppf(q: float, n: int, p: float, cdf: dict[int, float] | None = None) -> int:
    """Smallest r in 0..n with P(R <= r) >= q (0 < q < 1); ``cdf`` caches the values used."""
    cache: dict[int, float] = {} if cdf is None else cdf

    def at(r: int) -> float:
        if r not in cache:
            cache[r] = binom_cdf(r, n, p)
        return cache[r]

    mean = n * p
    sd = math.sqrt(n * p * (1.0 - p))
    z = _STANDARD_NORMAL.inv_cdf(q)
    guess = math.floor(
        mean + sd * (z + (z * z - 1.0) * (1.0 - 2.0 * p) / (6.0 * sd if sd else 1.0))
    )
    guess = min(max(guess, 0), n)
    # Bracket: at(lo) < q <= at(hi), with lo = -1 standing for P = 0.
    if at(guess) >= q:
        hi = guess
        step = 1
        lo = guess - step
        while lo >= 0 and at(lo) >= q:
            hi = lo
            step *= 2
            lo = guess - step
        lo = max(lo, -1)
    else:
        lo = guess
        step = 1
        hi = guess + step
        while hi < n and at(hi) < q:
            lo = hi
            step *= 2
            hi = guess + step
        hi = min(hi, n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if at(mid) >= q:
            hi = mid
        else:
            lo = mid
    return hi
