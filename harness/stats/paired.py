"""Paired comparisons of two models on the same items: the difference, its interval and a p-value.

0/1 verdicts: exact McNemar (a binomial test of the discordant pairs) and Newcombe's hybrid score
interval for a difference of paired proportions (Newcombe 1998, Stat Med 17:2622, method 10, with
its continuity-corrected phi), widened to contain 0 wherever the exact test does not reject, so the
interval and the p-value never disagree. Continuous scores: an exact sign-flip permutation test of
the per-item differences (Monte Carlo beyond 2^13 sign patterns) and Student's t interval of
their mean. Clustered units (IFEval's instructions within prompts): the same two on cluster sums,
the interval a ratio estimator's with a cluster-robust variance. No interval from a finite sample
has zero width; where no spread exists, Wilson's bound for [0, 1] scores stands in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, chi2, permutation_test
from scipy.stats import t as student_t

from harness.errors import HarnessError
from harness.stats.intervals import (
    DEFAULT_CONFIDENCE,
    DEFAULT_SEED,
    as_vector,
    clopper_pearson,
    cluster_totals,
    is_binary,
    ratio_stderr,
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
    test: str  # "mcnemar" (0/1), "sign-flip" (continuous or clustered), "hierarchical-bootstrap"
    n: int  # matched units (items; instructions where they are clustered in prompts)
    mean_a: float
    mean_b: float
    delta: float  # mean_b - mean_a
    ci_low: float  # interval of delta at the requested confidence
    ci_high: float
    p_value: float
    discordance: float  # E[(b - a)^2]: the discordant share for 0/1 scores; drives McNemar's power
    ci_method: str = ""  # "newcombe", "t", "cluster-t", "wilson" (no spread), "range" (one unit), ...
    clusters: int | None = None  # independent units when they are not the items (prompts); else None
    stderr: float | None = None  # of delta, where the interval is t-based: drives the MDE there

    @property
    def units(self) -> int:
        """The independent units the test and the interval rest on: clusters where there are any."""
        return self.n if self.clusters is None else self.clusters


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


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p: twice the smaller binomial tail at 1/2, from its logarithm.

    The log keeps p above 0 where it would underflow (about 1,075 one-sided discordant pairs);
    the smallest positive float stands in where even the logarithm's exponent cannot be held.
    """
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    log_p = math.log(2.0) + float(binom.logcdf(min(only_a, only_b), discordant, 0.5))
    return min(1.0, max(math.exp(log_p), math.ulp(0.0)))


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
        return McNemar(only_a, only_b, float(min(only_a, only_b)), mcnemar_p(only_a, only_b))
    statistic = max(abs(only_a - only_b) - 1, 0) ** 2 / discordant
    return McNemar(only_a, only_b, float(statistic), float(chi2.sf(statistic, 1)))


def newcombe_paired(
    both: int, only_b: int, only_a: int, neither: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Interval of p_b - p_a from a paired 2x2 table: Newcombe's method 10.

    Wilson intervals of the two marginals, combined by square-and-add corrected for the phi
    correlation of the two verdict vectors, phi with Newcombe's continuity correction (where
    ad > bc, ad - bc becomes max(ad - bc - n/2, 0)); without it the interval is narrower than the
    paper's in about half the tables (20/12/2/16: [0.0618, 0.3242] against Table III's
    [0.0562, 0.3292]). Written here because statsmodels and scipy implement Newcombe only for
    independent samples (`confint_proportions_2indep`). Two widenings keep it honest at small n:
    with no discordant pair the square-and-add step can shrink to nothing, and |p_b - p_a| never
    exceeds the discordant share, whose exact upper bound at 0 of n caps it; and where the exact
    McNemar test does not reject at 1 - confidence the interval is extended to 0 (0 vs 4 discordant
    pairs: p = 0.125, so no interval may exclude "no difference").
    """
    n = both + only_b + only_a + neither
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    b_ci, a_ci = wilson(p_b, n, confidence), wilson(p_a, n, confidence)
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    cross = both * neither - only_b * only_a
    if cross > 0:
        cross = max(cross - n / 2.0, 0.0)
    phi = cross / math.sqrt(margins) if margins else 0.0
    down_b, up_b = p_b - b_ci.low, b_ci.high - p_b
    down_a, up_a = p_a - a_ci.low, a_ci.high - p_a
    below = math.sqrt(max(0.0, down_b**2 - 2 * phi * down_b * up_a + up_a**2))
    above = math.sqrt(max(0.0, up_b**2 - 2 * phi * up_b * down_a + down_a**2))
    delta = p_b - p_a
    low, high = delta - below, delta + above
    if only_a + only_b == 0:
        bound = clopper_pearson(0, n, confidence).high
        low, high = min(low, -bound), max(high, bound)
    low, high = contain_zero(low, high, mcnemar_p(only_a, only_b), confidence)
    return max(-1.0, low), min(1.0, high)


def contain_zero(low: float, high: float, p_value: float, confidence: float) -> tuple[float, float]:
    """An interval that excludes 0 claims what a test with p >= 1 - confidence does not: extend it."""
    if p_value >= 1.0 - confidence:
        return min(low, 0.0), max(high, 0.0)
    return low, high


def sign_flip_p(diff: np.ndarray, seed: int = DEFAULT_SEED) -> float:
    """Two-sided p of mean(diff) = 0 by flipping signs (exact enumeration when 2^n <= 9999)."""
    # Sorted: the statistic ignores order, and a fixed order keeps Monte Carlo draws from
    # depending on how the items happen to be named.
    diff = np.sort(np.asarray(diff, dtype=float))
    if diff.size < 2 or not np.any(diff):
        return 1.0  # one unit: both sign patterns are as extreme as the observed one
    result = permutation_test(
        (diff,),
        lambda x, axis: np.mean(x, axis=axis),
        vectorized=True,
        permutation_type="samples",
        n_resamples=_PERMUTATIONS,
        rng=seed,
    )
    return float(min(1.0, result.pvalue))


@dataclass(frozen=True)
class ClusterSums:
    """Per-cluster totals of paired unit scores: what every clustered statistic is computed from."""

    size: np.ndarray  # units per cluster
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, clusters: Sequence[str] | None) -> ClusterSums:
        if clusters is None:
            return cls(np.ones(a.size), a, b)
        size, sums_a = cluster_totals(a, clusters)
        return cls(size, sums_a, cluster_totals(b, clusters)[1])

    @property
    def diff(self) -> np.ndarray:
        return self.b - self.a

    @property
    def delta(self) -> float:
        return float(self.diff.sum() / self.size.sum())


def _span(a: np.ndarray, b: np.ndarray) -> float:
    """Width of the range the scores live in: [0, 1] for scores, [0, max] for counts like lengths."""
    return max(1.0, float(np.max(a)), float(np.max(b))) - min(0.0, float(np.min(a)), float(np.min(b)))


def _continuous(
    va: np.ndarray, vb: np.ndarray, clusters: Sequence[str] | None, confidence: float, seed: int
) -> tuple[float, float, float, str, float | None]:
    """Sign-flip p over independent units, and the interval: (low, high, p, method, stderr)."""
    sums = ClusterSums.of(va, vb, clusters)
    g, span = sums.size.size, _span(va, vb)
    p = sign_flip_p(sums.diff, seed)
    if g < 2:
        return -span, span, p, "range", None  # one unit: no variance estimate, only the range
    delta, stderr = sums.delta, ratio_stderr(sums.diff, sums.size)
    if stderr == 0.0:
        # No spread: Wilson's bound for a variable on [0, span] at the same mean, over g units.
        ci = wilson((delta / span + 1.0) / 2.0, g, confidence)
        low, high, method = span * (2.0 * ci.low - 1.0), span * (2.0 * ci.high - 1.0), "wilson"
    else:
        half = float(student_t.ppf(0.5 + confidence / 2.0, g - 1)) * stderr
        low, high = max(-span, delta - half), min(span, delta + half)
        method = "t" if clusters is None else "cluster-t"
    low, high = contain_zero(low, high, p, confidence)
    return low, high, p, method, stderr


def _clustered(clusters: Sequence[str] | None) -> bool:
    return clusters is not None and len(set(clusters)) < len(clusters)


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    clusters: Sequence[str] | None = None,
) -> PairedTest:
    """Compare aligned scores of two models.

    Independent 0/1 verdicts: McNemar + Newcombe. Continuous scores, or units clustered in larger
    independent units (`clusters`: a cluster name per unit): sign-flip + t over the clusters.
    """
    va, vb = _pair(a, b)
    if not (np.all(np.isfinite(va)) and np.all(np.isfinite(vb))):
        raise HarnessError("paired scores must be finite numbers: found NaN or infinity in a sample record")
    if clusters is not None and len(clusters) != va.size:
        raise ValueError(f"{len(clusters)} cluster names for {va.size} paired scores")
    diff = vb - va
    n = int(diff.size)
    means = float(va.mean()), float(vb.mean()), float(diff.mean())
    discordance = float(np.mean(diff**2))
    clustered = _clustered(clusters)
    if is_binary(va) and is_binary(vb) and not clustered:
        test = mcnemar(va, vb)
        both = int(np.sum((va == 1) & (vb == 1)))
        neither = n - both - test.only_a - test.only_b
        low, high = newcombe_paired(both, test.only_b, test.only_a, neither, confidence)
        return PairedTest("mcnemar", n, *means, low, high, test.p_value, discordance, "newcombe")
    low, high, p, method, stderr = _continuous(va, vb, clusters if clustered else None, confidence, seed)
    groups = len(set(clusters)) if clustered else None
    return PairedTest("sign-flip", n, *means, low, high, p, discordance, method, groups, stderr)


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
    cluster_of: Callable[[str], str] | None = None,
) -> ItemComparison:
    """Paired test of b against a on the item_ids they share; `cluster_of` names each id's
    independent unit where ids are not independent (an IFEval instruction's prompt)."""
    aligned = align(a, b)
    clusters = [cluster_of(i) for i in aligned.ids] if cluster_of else None
    result = paired_test(aligned.a, aligned.b, confidence, seed, clusters) if aligned.ids else None
    return ItemComparison(result, len(aligned.ids), aligned.only_a, aligned.only_b)
