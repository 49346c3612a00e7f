"""Simulated coverage of the intervals a report uses, at the smallest n each is trusted at
(harness/stats/coverage.py), on the kinds of data the report compares. Seeded, so the numbers are
the same every run; docs/statistics.md tabulates the same simulation at more sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import multinomial

from harness.stats import MIN_UNITS, NEAR_NOMINAL, hierarchical_bootstrap, newcombe_paired, paired_test

# Paired-verdict cell probabilities (both right, only b right, only a right): agreement high and low,
# differences up and down, a rare discordance.
CELLS = [(0.4, 0.05, 0.15), (0.1, 0.1, 0.1), (0.6, 0.08, 0.02), (0.3, 0.05, 0.05), (0.05, 0.02, 0.02)]


def _newcombe_exact_coverage(n: int, both: float, only_b: float, only_a: float) -> float:
    """Exact: every 2x2 table of n items, weighted by its multinomial probability."""
    probs = [both, only_b, only_a, 1.0 - both - only_b - only_a]
    covered = 0.0
    for x in itertools.product(range(n + 1), repeat=3):
        if sum(x) > n:
            continue
        table = (*x, n - sum(x))
        low, high = newcombe_paired(*table)
        if low <= only_b - only_a <= high:
            covered += multinomial.pmf(table, n, probs)
    return covered


@pytest.mark.parametrize("cells", CELLS)
def test_newcombe_covers_at_its_trusted_n(cells) -> None:
    assert _newcombe_exact_coverage(MIN_UNITS["newcombe"], *cells) >= NEAR_NOMINAL


def _coverage(draw, truth: float, sims: int, rng: np.random.Generator, **kwargs) -> float:
    hits = 0
    for _ in range(sims):
        a, b, clusters = draw(rng)
        r = paired_test(a, b, clusters=clusters, **kwargs)
        hits += r.ci_low <= truth <= r.ci_high
    return hits / sims


def test_t_interval_covers_continuous_scores_at_its_trusted_n() -> None:
    # MC2-like scores: skewed beta distributions with a known difference of means.
    n = MIN_UNITS["t"]
    truth = 0.9 / 2.9 - 0.7 / 2.7

    def draw(rng):
        return rng.beta(0.7, 2, n), rng.beta(0.9, 2, n), None

    assert _coverage(draw, truth, 600, np.random.default_rng(0)) >= NEAR_NOMINAL


def _ifeval(groups: int, rng: np.random.Generator, agree: float):
    """Prompts with 1-3 instructions and a prompt-level difficulty; `agree` ties b's verdict to a's."""
    sizes = rng.integers(1, 4, groups)
    index = np.repeat(np.arange(groups), sizes)
    u = rng.normal(0, 1.2, groups)[index]
    z_a = rng.random(index.size)
    z_b = np.where(rng.random(index.size) < agree, z_a, rng.random(index.size))
    a = (z_a < 1 / (1 + np.exp(-(u - 0.2)))).astype(float)
    b = (z_b < 1 / (1 + np.exp(-(u + 0.1)))).astype(float)
    return a, b, [f"p{i}" for i in index]


@pytest.mark.parametrize("agree", [0.8, 1.0])  # 1.0: every difference one way, the hard case
def test_cluster_interval_covers_at_its_trusted_n(agree: float) -> None:
    rng = np.random.default_rng(1)
    big = [_ifeval(2000, rng, agree) for _ in range(40)]
    truth = sum(b.sum() - a.sum() for a, b, _ in big) / sum(a.size for a, _, _ in big)
    groups = MIN_UNITS["cluster-t"]
    coverage = _coverage(lambda r: _ifeval(groups, r, agree), truth, 300, rng)
    assert coverage >= NEAR_NOMINAL


def test_hierarchical_bootstrap_covers_at_its_trusted_n() -> None:
    # Two seeds per method, a seed effect on the logit, items of varying difficulty; the truth is
    # the difference of the methods' expected scores over items and seeds.
    rng = np.random.default_rng(2)
    n, shift, tau = MIN_UNITS["hierarchical-bootstrap"], 0.3, 0.3
    u, s_a, s_b = rng.normal(0, 1.5, 400_000), rng.normal(0, tau, 400_000), rng.normal(0, tau, 400_000)
    truth = float(np.mean(1 / (1 + np.exp(-(u + shift + s_b))) - 1 / (1 + np.exp(-(u + s_a)))))

    def side(items, offset):
        return np.stack(
            [(rng.random(n) < 1 / (1 + np.exp(-(items + offset + rng.normal(0, tau))))) for _ in range(2)]
        ).astype(float)

    hits = 0
    sims = 150
    for _ in range(sims):
        items = rng.normal(0, 1.5, n)
        h = hierarchical_bootstrap(side(items, 0.0), side(items, shift), n_resamples=500)
        hits += h.ci_low <= truth <= h.ci_high
    assert hits / sims >= NEAR_NOMINAL


def test_below_the_trusted_n_the_old_percentile_bootstrap_undercovered() -> None:
    # Why "too few items" exists: at n = 4 the paired percentile bootstrap this harness used to show
    # covered far below 95 % (the issue measured about 77 %); Student's t, used now, does not.
    rng = np.random.default_rng(3)
    truth, n, sims = 0.9 / 2.9 - 0.7 / 2.7, 4, 400
    boot_hits = t_hits = 0
    for _ in range(sims):
        a, b = rng.beta(0.7, 2, n), rng.beta(0.9, 2, n)
        diff = b - a
        means = diff[rng.integers(0, n, size=(2000, n))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        boot_hits += low <= truth <= high
        r = paired_test(a, b)
        t_hits += r.ci_low <= truth <= r.ci_high
    assert boot_hits / sims < 0.85 < NEAR_NOMINAL <= t_hits / sims
