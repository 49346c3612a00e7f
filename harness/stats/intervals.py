"""Intervals for one model's score on one benchmark, valid at the small n this harness often runs.

0/1 verdicts get the Clopper–Pearson exact interval (never narrower than its nominal coverage, and
never of zero width for a finite sample: 0 of 4 correct is [0, 60.2] %). Continuous scores in
[0, 1] (TruthfulQA-MC2) get Student's t interval, clipped to [0, 1]: the percentile bootstrap
used before covered 77 % at n = 4 (it ignores the (n - 1)/n shrinkage and the t tails), t's
coverage is near nominal from a few items on (tests/unit/test_stats_coverage.py simulates it). A sample
with no spread at all would give a t interval of zero width, so there the Wilson score interval at
the same mean is used instead: a [0, 1] variable with mean m has variance at most m(1 - m), the
Bernoulli's, so that interval is the widest the data can justify and never a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t
from statsmodels.stats.proportion import proportion_confint

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int
    method: str = ""  # "clopper-pearson", "wilson", "bootstrap", ...


def as_vector(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    vec = np.asarray(scores, dtype=float)
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError("need a non-empty 1-D vector of scores")
    return vec


def is_binary(scores: np.ndarray) -> bool:
    return bool(np.all((scores == 0.0) | (scores == 1.0)))


def clopper_pearson(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    low, high = proportion_confint(successes, n, alpha=1.0 - confidence, method="beta")
    return Interval(successes / n, float(low), float(high), n, "clopper-pearson")


def wilson(mean: float, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson score interval; `mean` may be any value in [0, 1] (a fractional success count is fine)."""
    mean = min(max(mean, 0.0), 1.0)  # float noise must not push the count past 0 or n
    low, high = proportion_confint(mean * n, n, alpha=1.0 - confidence, method="wilson")
    # At 0 or n successes the bound next to the mean is the mean itself up to rounding, which can
    # land on the wrong side of it (a low of 1e-17 above a mean of 0): keep the mean inside.
    return Interval(mean, min(float(low), mean), max(float(high), mean), n, "wilson")


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Student's t interval of a mean; (-inf, inf) for one value (no variance estimate exists)."""
    vec = as_vector(values)
    mean = float(vec.mean())
    if vec.size < 2:
        return Interval(mean, -math.inf, math.inf, 1, "t")
    half = float(t.ppf(0.5 + confidence / 2.0, vec.size - 1)) * float(vec.std(ddof=1)) / math.sqrt(vec.size)
    return Interval(mean, mean - half, mean + half, int(vec.size), "t")


def cluster_totals(values: np.ndarray, clusters: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(units per cluster, sum of `values` per cluster), clusters in sorted name order."""
    names, index = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    return np.bincount(index, minlength=names.size).astype(float), np.bincount(index, values, names.size)


def ratio_stderr(sums: np.ndarray, size: np.ndarray) -> float:
    """Standard error of a ratio of sums (sum of `sums` / sum of `size`) over independent clusters.

    Linearised, cluster-robust: residuals s_g - mean * m_g, with the G / (G - 1) small-sample factor;
    with one unit per cluster this is the t interval's s / sqrt(n) exactly.
    """
    g = size.size
    residual = sums - float(sums.sum() / size.sum()) * size
    return math.sqrt(g / (g - 1) * float(np.sum(residual**2))) / float(size.sum())


def cluster_interval(scores: np.ndarray, clusters: Sequence[str], confidence: float) -> Interval:
    """Mean of units clustered in independent units (IFEval instructions in prompts): the ratio of
    sums, with a cluster-robust variance and t at G - 1 degrees of freedom; Wilson at G where the
    clusters show no spread."""
    size, sums = cluster_totals(scores, clusters)
    groups = size.size
    mean = float(sums.sum() / size.sum())
    stderr = ratio_stderr(sums, size)
    if stderr == 0.0:
        ci = wilson(mean, groups, confidence)
        return Interval(mean, ci.low, ci.high, int(scores.size), "wilson")
    half = float(t.ppf(0.5 + confidence / 2.0, groups - 1)) * stderr
    return Interval(mean, max(0.0, mean - half), min(1.0, mean + half), int(scores.size), "cluster-t")


def score_interval(
    scores: Sequence[float] | np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    clusters: Sequence[str] | None = None,
) -> Interval:
    """The interval a report shows for a mean of per-item scores in [0, 1] (see the module doc);
    `clusters` names each score's independent unit where scores share one (IFEval's prompts)."""
    vec = as_vector(scores)
    if clusters is not None and 1 < len(set(clusters)) < vec.size:
        return cluster_interval(vec, clusters, confidence)
    if is_binary(vec):
        return clopper_pearson(int(vec.sum()), int(vec.size), confidence)
    if np.ptp(vec) == 0.0:
        return wilson(float(vec.mean()), int(vec.size), confidence)
    ci = t_interval(vec, confidence)
    return Interval(ci.mean, max(0.0, ci.low), min(1.0, ci.high), ci.n, "t")


def aggregate_interval(
    value: float, stderr: float | None, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval | None:
    """An interval from an aggregate alone (no per-item scores): normal with the reported stderr,
    or Wilson at the value where the stderr is missing or zero (a zero stderr from a finite sample
    claims a certainty it does not have)."""
    if n <= 0:
        return None
    if stderr is None or stderr <= 0.0:
        return wilson(min(max(value, 0.0), 1.0), n, confidence)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    # A score lives in [0, 1]; a normal interval around one near the edge would leave it.
    return Interval(value, max(0.0, value - z * stderr), min(1.0, value + z * stderr), n, "normal")


def display_digits(low: float, high: float, digits: int = 3, most: int = 12) -> int:
    """Decimals (at least `digits`) at which an interval's two ends print differently, so that no
    interval with width is ever shown as a point ("10.790 [10.790, 10.790]")."""
    while digits < most and f"{low:.{digits}f}" == f"{high:.{digits}f}":
        digits += 1
    return digits


def interval_text(mean: float, low: float | None, high: float | None, signed: bool = False) -> str:
    """ "mean [low, high]" with enough decimals that the interval never reads as a point; an
    interval that does not exist (one value) says so."""
    sign = "+" if signed else ""
    if low is None or high is None:
        return f"{mean:{sign}.3f} [no interval from one value]"
    d = display_digits(low, high)
    return f"{mean:{sign}.{d}f} [{low:{sign}.{d}f}, {high:{sign}.{d}f}]"
