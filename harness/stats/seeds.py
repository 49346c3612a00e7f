"""Comparisons of methods trained with several seeds: item variance and training-seed variance.

A method run with S seeds has S models; the items they are scored on are shared with the model
it is compared with. The hierarchical bootstrap resamples at both levels, seeds (with
replacement, independently per method, since their trainings are independent) and then items
(the same items for both sides, which keeps the pairing), so its interval carries both sources of
variance. Where items are clustered (IFEval instructions within prompts) the clusters are
resampled. Written by hand: scipy.stats.bootstrap resamples one level only.

A bootstrap p-value cannot fall below 2 / (resamples + 1), whatever n is, and is not valid at a
handful of items; the p reported is therefore never below the exact sign-flip test's on the
seed-averaged per-unit differences (one item: p = 1; two: 0.5), which is valid at every n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats.intervals import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, wilson
from harness.stats.paired import contain_zero, sign_flip_p


@dataclass(frozen=True)
class SeedComparison:
    n: int  # shared items (units)
    seeds_a: int
    seeds_b: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    discordance: float  # E[(b - a)^2] over items, seeds averaged: for the MDE
    clusters: int | None = None  # independent units, where the items are clustered
    stderr: float | None = None  # the resampled deltas' standard deviation: drives the MDE


def _cluster_sums(scores: np.ndarray, index: np.ndarray, groups: int) -> np.ndarray:
    """(seeds, clusters) sums of each seed's unit scores."""
    return np.stack([np.bincount(index, row, groups) for row in scores])


def hierarchical_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    clusters: Sequence[str] | None = None,
) -> SeedComparison:
    """`a`, `b`: (seeds, items) score matrices on the same items in the same order; `clusters`
    names each item's independent unit where items are not independent.

    A resampled difference depends only on each cluster's size and per-seed sums, so clusters are
    put in an order fixed by those numbers before resampling: renaming items or clusters, which
    only permutes them, cannot move a bound. Seeds keep the caller's order.
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError("need score matrices over the same, non-empty item set")
    n = a.shape[1]
    names = np.arange(n) if clusters is None else np.asarray(clusters, dtype=str)
    _, index = np.unique(names, return_inverse=True)
    groups = int(index.max()) + 1
    size = np.bincount(index, minlength=groups).astype(float)
    sums_a, sums_b = _cluster_sums(a, index, groups), _cluster_sums(b, index, groups)
    order = np.lexsort(np.vstack([size, sums_a, sums_b])[::-1])
    size, sums_a, sums_b = size[order], sums_a[:, order], sums_b[:, order]
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    for r in range(n_resamples):
        picked = rng.integers(0, groups, size=groups)
        pick_a = sums_a[rng.integers(0, a.shape[0], size=a.shape[0])].mean(axis=0)
        pick_b = sums_b[rng.integers(0, b.shape[0], size=b.shape[0])].mean(axis=0)
        deltas[r] = (pick_b[picked].sum() - pick_a[picked].sum()) / size[picked].sum()
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    delta = float(b.mean() - a.mean())
    if groups < 2:
        low, high = -1.0, 1.0  # one unit: resampling it shows no variance, the range is all there is
    elif low == high:
        # No spread at either level: as for one sample (intervals.py), Wilson on the rescaled mean.
        ci = wilson((delta + 1.0) / 2.0, groups, confidence)
        low, high = 2.0 * ci.low - 1.0, 2.0 * ci.high - 1.0
    beyond = min(int(np.sum(deltas <= 0.0)), int(np.sum(deltas >= 0.0)))
    boot_p = min(1.0, 2.0 * (1 + beyond) / (n_resamples + 1)) if np.any(deltas) else 1.0
    p = max(boot_p, sign_flip_p(sums_b.mean(axis=0) - sums_a.mean(axis=0), seed))
    low, high = contain_zero(low, high, p, confidence)
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
        groups if clusters is not None and groups < n else None,
        float(np.std(deltas, ddof=1)),
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
