"""What a paired comparison of n items could have detected.

The power of the exact McNemar test is computed exactly, not by the usual normal approximation
(which is poor at the tens of items a CPU run scores): the number of discordant items D is
Binomial(n, psi), and given D the items favouring the variant are Binomial(D, (psi + delta) /
(2 psi)); the test rejects when the smaller count falls in the binomial tail at alpha / 2. The
minimum detectable effect (MDE) is the smallest |delta| with power >= 80 %, found by bisection,
since power grows with delta at fixed n and psi. No library offers this for the exact test
(statsmodels' power classes are normal-theory), hence the code here.

psi is E[(b - a)^2] per item: the share of discordant items for 0/1 scores. Continuous scores use
the normal approximation with variance psi - delta^2.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.stats import binom, norm
from scipy.stats import t as student_t

DEFAULT_POWER = 0.8
_BISECTIONS = 40


@lru_cache(maxsize=256)
def _critical_counts(n: int, alpha: float) -> np.ndarray:
    """For each discordant count d = 0..n, the largest c with 2 P(X <= c | d, 1/2) <= alpha (-1: none)."""
    d = np.arange(n + 1)
    c = binom.ppf(alpha / 2.0, d, 0.5)
    c = np.where(binom.cdf(c, d, 0.5) > alpha / 2.0 + 1e-15, c - 1, c)
    return c.astype(np.int64)


def mcnemar_power(n: int, discordance: float, effect: float, alpha: float) -> float:
    """Exact power of the two-sided exact McNemar test; `effect` = p(b right, a wrong) - p(a right, b wrong)."""
    effect = abs(effect)
    if n <= 0 or discordance <= 0.0 or effect > discordance + 1e-12:
        return 0.0 if effect > 0 else alpha
    favour = min(1.0, (discordance + effect) / (2.0 * discordance))
    d = np.arange(n + 1)
    c = _critical_counts(n, alpha)
    reject = np.where(c >= 0, binom.cdf(c, d, favour) + binom.sf(d - c - 1, d, favour), 0.0)
    return float(np.sum(binom.pmf(d, n, discordance) * reject))


def normal_power(n: int, discordance: float, effect: float, alpha: float) -> float:
    """Power of a two-sided test of a mean paired difference (normal approximation)."""
    variance = max(discordance - effect**2, 0.0)
    if n <= 0:
        return 0.0
    if variance == 0.0:
        return 1.0 if effect else alpha
    shift = abs(effect) * math.sqrt(n / variance)
    z = norm.ppf(1.0 - alpha / 2.0)
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def _power(binary: bool):
    return mcnemar_power if binary else normal_power


@lru_cache(maxsize=4096)
def mde(
    n: int, discordance: float | None, alpha: float, power: float = DEFAULT_POWER, binary: bool = True
) -> float | None:
    """Smallest |effect| detected with `power`, as a fraction (0.1 = 10 points).

    discordance=None: the observed rate is unknown; an effect of delta implies at least delta
    discordance, so the rate is taken as delta itself (the best case for detection): the
    smallest change that any data of this size could have shown. A given discordance is raised to
    delta where delta exceeds it, for the same reason. None when even a full flip is not detectable.
    """
    floor = 0.0 if discordance is None else discordance
    fn = _power(binary)

    def power_at(delta: float) -> float:
        return fn(n, max(floor, delta), delta, alpha)

    if n <= 0 or power_at(1.0) < power:
        return None
    low, high = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2.0
        low, high = (low, mid) if power_at(mid) >= power else (mid, high)
    return high


@lru_cache(maxsize=1024)
def n_for_effect(
    effect: float, discordance: float, alpha: float, power: float = DEFAULT_POWER, max_n: int = 1_000_000
) -> int | None:
    """Smallest n at which the exact McNemar test reaches `power` for `effect` at `discordance`.

    Exact power is saw-toothed in n; like most planners we report the first n that reaches it.
    Starts from Connor's (1987) normal approximation and scans upward.
    """
    effect = abs(effect)
    discordance = max(discordance, effect)
    if effect <= 0.0:
        return None
    z_a, z_b = norm.ppf(1.0 - alpha / 2.0), norm.ppf(power)
    guess = (
        (z_a * math.sqrt(discordance) + z_b * math.sqrt(max(discordance - effect**2, 0.0))) / effect
    ) ** 2
    n = max(1, int(guess * 0.7))
    while n <= max_n:
        if mcnemar_power(n, discordance, effect, alpha) >= power:
            return n
        n += max(1, n // 200)
    return None


def mde_spread(units: int, stderr: float | None, alpha: float, power: float = DEFAULT_POWER) -> float | None:
    """MDE of a mean difference from its observed standard error: continuous scores, clustered
    units, several seeds. (t quantiles at units - 1 degrees of freedom; the 0/1 bound psi >= |delta|
    that `mde` uses would put a 66-point MDE beside a +-0.3-point interval.)

    None where the sign-flip test cannot reach alpha at all (its smallest p is 2 / 2^units); the
    [0, 1] bound stands in where the differences show no spread to estimate from.
    """
    if units < 2 or 2.0 / 2.0**units > alpha:
        return None
    if not stderr:
        return mde(units, None, alpha, power, binary=False)
    df = units - 1
    return float((student_t.ppf(1.0 - alpha / 2.0, df) + student_t.ppf(power, df)) * stderr)
