"""Comparisons of methods trained with several seeds: item variance and training-seed variance.

A method run with S seeds has S models; the items they are scored on are shared with the model
it is compared with. The hierarchical bootstrap resamples at both levels, seeds (with
replacement, independently per method, since their trainings are independent) and then items
(the same items for both sides, which keeps the pairing), so its interval carries both sources of
variance. Written by hand: scipy.stats.bootstrap resamples one level only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stats.intervals import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, wilson


@dataclass(frozen=True)
class SeedComparison:
    n: int  # shared items
    seeds_a: int
    seeds_b: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    discordance: float  # E[(b - a)^2] over items, seeds averaged: for the MDE


def hierarchical_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> SeedComparison:
    """`a`, `b`: (seeds, items) score matrices on the same items in the same order.

    The p-value is two-sided from the resampled deltas' position against 0 (with the +1 that keeps a
    finite number of resamples from claiming p = 0).
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError("need score matrices over the same, non-empty item set")
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    deltas = np.empty(n_resamples)
    for r in range(n_resamples):
        items = rng.integers(0, n, size=n)
        pick_a = a[rng.integers(0, a.shape[0], size=a.shape[0])].mean(axis=0)
        pick_b = b[rng.integers(0, b.shape[0], size=b.shape[0])].mean(axis=0)
        deltas[r] = pick_b[items].mean() - pick_a[items].mean()
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    delta = float(b.mean() - a.mean())
    if low == high:
        # No spread at either level: as for one sample (intervals.py), Wilson on the rescaled mean.
        ci = wilson((delta + 1.0) / 2.0, n, confidence)
        low, high = 2.0 * ci.low - 1.0, 2.0 * ci.high - 1.0
    beyond = min(int(np.sum(deltas <= 0.0)), int(np.sum(deltas >= 0.0)))
    p = min(1.0, 2.0 * (1 + beyond) / (n_resamples + 1)) if np.any(deltas) else 1.0
    diff = b.mean(axis=0) - a.mean(axis=0)
    return SeedComparison(
        n,
        a.shape[0],
        b.shape[0],
        float(a.mean()),
        float(b.mean()),
        delta,
        float(low),
        float(high),
        p,
        float(np.mean(diff**2)),
    )


def seed_variance_share(scores: np.ndarray) -> float | None:
    """Share of the variance of a method's mean score that comes from the training seed.

    One-way random-effects decomposition: the spread of per-seed means minus what item sampling
    alone would give (each seed's item variance / n), floored at 0.
    """
    scores = np.atleast_2d(np.asarray(scores, float))
    seeds, n = scores.shape
    if seeds < 2 or n < 2:
        return None
    between = float(np.var(scores.mean(axis=1), ddof=1))
    item_part = float(np.mean(np.var(scores, axis=1, ddof=1))) / n
    seed_part = max(0.0, between - item_part)
    total = seed_part + item_part
    return seed_part / total if total > 0 else 0.0
