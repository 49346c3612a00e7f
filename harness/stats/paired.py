"""Paired comparisons of two models on the same items: the difference, its interval and a p-value.

0/1 verdicts: exact McNemar (a binomial test of the discordant pairs) and Newcombe's hybrid score
interval for a difference of paired proportions (Newcombe 1998, Stat Med 17:2635, method 10).
Continuous scores: an exact sign-flip permutation test of the per-item differences (Monte Carlo
beyond 2^13 sign patterns) and a paired percentile bootstrap interval, with the same no-spread
fallback as a single score (see intervals.py). No interval from a finite sample has zero width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, chi2, permutation_test

from harness.stats.intervals import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    as_vector,
    bootstrap_means,
    clopper_pearson,
    is_binary,
    wilson,
)

_PERMUTATIONS = 9999


@dataclass(frozen=True)
class McNemar:
    only_a: int  # items right under a, wrong under b
    only_b: int  # items wrong under a, right under b
    statistic: float  # exact: the smaller discordant count; chi2: the corrected statistic
    p_value: float


@dataclass(frozen=True)
class PairedTest:
    test: str  # "mcnemar" (0/1 scores) or "sign-flip" (continuous scores)
    n: int  # matched items
    mean_a: float
    mean_b: float
    delta: float  # mean_b - mean_a
    ci_low: float  # interval of delta at the requested confidence
    ci_high: float
    p_value: float
    discordance: float  # E[(b - a)^2]: the discordant share for 0/1 scores; drives power
    ci_method: str = ""  # "newcombe", "bootstrap", "wilson" (no-spread fallback)


@dataclass(frozen=True)
class Alignment:
    ids: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    only_a: int  # ids present only in a
    only_b: int


@dataclass(frozen=True)
class ItemComparison:
    """A paired test on the items two runs share, with how many did not match."""

    result: PairedTest | None  # None when no item matched
    matched: int
    only_a: int
    only_b: int


def _pair(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    va, vb = as_vector(a), as_vector(b)
    if va.size != vb.size:
        raise ValueError(f"paired vectors differ in length: {va.size} vs {vb.size}")
    return va, vb


def mcnemar(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, exact: bool = True) -> McNemar:
    """McNemar's test on aligned 0/1 verdicts; only discordant pairs carry information.

    exact=True: binomial test of the discordant counts against p = 1/2.
    exact=False: chi-square with Edwards' continuity correction, (|b - c| - 1)^2 / (b + c).
    """
    va, vb = (v.astype(bool) for v in _pair(a, b))
    only_a, only_b = int(np.sum(va & ~vb)), int(np.sum(~va & vb))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemar(only_a, only_b, 0.0, 1.0)
    if exact:
        p = binomtest(only_a, discordant, 0.5).pvalue
        return McNemar(only_a, only_b, float(min(only_a, only_b)), float(min(1.0, p)))
    statistic = max(abs(only_a - only_b) - 1, 0) ** 2 / discordant
    return McNemar(only_a, only_b, float(statistic), float(chi2.sf(statistic, 1)))


def newcombe_paired(
    both: int, only_b: int, only_a: int, neither: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Interval of p_b - p_a from a paired 2x2 table (Newcombe's method 10, no continuity correction).

    Written here because statsmodels and scipy implement it only for independent samples
    (`confint_proportions_2indep`); the paired version corrects the square-and-add step by the
    phi correlation of the two verdict vectors.
    """
    n = both + only_b + only_a + neither
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    b_ci, a_ci = wilson(p_b, n, confidence), wilson(p_a, n, confidence)
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = (both * neither - only_b * only_a) / math.sqrt(margins) if margins else 0.0
    down_b, up_b = p_b - b_ci.low, b_ci.high - p_b
    down_a, up_a = p_a - a_ci.low, a_ci.high - p_a
    below = math.sqrt(max(0.0, down_b**2 - 2 * phi * down_b * up_a + up_a**2))
    above = math.sqrt(max(0.0, up_b**2 - 2 * phi * up_b * down_a + down_a**2))
    delta = p_b - p_a
    low, high = delta - below, delta + above
    if only_a + only_b == 0:
        # With no discordant pair phi is 1 and the square-and-add step can shrink to nothing (at
        # p = 1/2 exactly). |p_b - p_a| never exceeds the discordant share, whose exact upper bound
        # at 0 of n keeps the interval honest.
        bound = clopper_pearson(0, n, confidence).high
        low, high = min(low, -bound), max(high, bound)
    return max(-1.0, low), min(1.0, high)


def paired_bootstrap_interval(
    diff: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float, str]:
    """Percentile bootstrap of mean(diff); without spread, Wilson on diff rescaled from [-1, 1] to [0, 1]."""
    if np.ptp(diff) == 0.0:
        ci = wilson((float(diff.mean()) + 1.0) / 2.0, int(diff.size), confidence)
        return 2.0 * ci.low - 1.0, 2.0 * ci.high - 1.0, "wilson"
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(bootstrap_means(diff, n_resamples, seed), [tail, 1.0 - tail])
    return float(low), float(high), "bootstrap"


def sign_flip_p(diff: np.ndarray, seed: int = DEFAULT_SEED) -> float:
    """Two-sided p of mean(diff) = 0 by flipping signs (exact enumeration when 2^n <= 9999)."""
    if not np.any(diff):
        return 1.0
    result = permutation_test(
        (diff,),
        lambda x, axis: np.mean(x, axis=axis),
        vectorized=True,
        permutation_type="samples",
        n_resamples=_PERMUTATIONS,
        rng=seed,
    )
    return float(min(1.0, result.pvalue))


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> PairedTest:
    """Compare aligned scores of two models: McNemar + Newcombe for 0/1, sign-flip + bootstrap otherwise."""
    va, vb = _pair(a, b)
    diff = vb - va
    n = int(diff.size)
    discordance = float(np.mean(diff**2))
    if is_binary(va) and is_binary(vb):
        test = mcnemar(va, vb)
        both = int(np.sum((va == 1) & (vb == 1)))
        low, high = newcombe_paired(
            both, test.only_b, test.only_a, n - both - test.only_a - test.only_b, confidence
        )
        return PairedTest(
            "mcnemar",
            n,
            float(va.mean()),
            float(vb.mean()),
            float(diff.mean()),
            low,
            high,
            test.p_value,
            discordance,
            "newcombe",
        )
    low, high, method = paired_bootstrap_interval(diff, confidence, seed=seed)
    return PairedTest(
        "sign-flip",
        n,
        float(va.mean()),
        float(vb.mean()),
        float(diff.mean()),
        low,
        high,
        sign_flip_p(diff, seed),
        discordance,
        method,
    )


def align(a: Mapping[str, float], b: Mapping[str, float]) -> Alignment:
    """Scores of the items both mappings share, in sorted item_id order."""
    ids = tuple(sorted(a.keys() & b.keys()))
    return Alignment(
        ids,
        np.array([a[i] for i in ids], dtype=float),
        np.array([b[i] for i in ids], dtype=float),
        len(a.keys() - b.keys()),
        len(b.keys() - a.keys()),
    )


def compare_items(
    a: Mapping[str, float],
    b: Mapping[str, float],
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> ItemComparison:
    """Paired test of b against a on the item_ids they share."""
    aligned = align(a, b)
    result = paired_test(aligned.a, aligned.b, confidence, seed) if aligned.ids else None
    return ItemComparison(result, len(aligned.ids), aligned.only_a, aligned.only_b)
