"""Intervals, paired tests, power, multiplicity and seed variance against known values and libraries."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.optimize import brentq

from harness.errors import HarnessError
from harness.stats import (
    adjust,
    align,
    clopper_pearson,
    compare_items,
    hierarchical_bootstrap,
    mcnemar,
    mcnemar_power,
    mde,
    n_for_effect,
    newcombe_paired,
    paired_test,
    score_interval,
    seed_variance_share,
    sign_flip_p,
    wilson,
)

CASES = json.loads((Path(__file__).parents[1] / "cases" / "stats.json").read_text())


def _pairs(only_a: int, only_b: int, both: int = 0, neither: int = 0) -> tuple[list[int], list[int]]:
    """Aligned verdict vectors with the given 2x2 table."""
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


@pytest.mark.parametrize("case", CASES["clopper_pearson"])
def test_clopper_pearson_known_values(case: dict) -> None:
    ci = clopper_pearson(case["successes"], case["n"])
    assert (ci.low, ci.high) == pytest.approx((case["low"], case["high"]), abs=2e-6)


@pytest.mark.parametrize("case", CASES["wilson"])
def test_wilson_known_values(case: dict) -> None:
    ci = wilson(case["successes"] / case["n"], case["n"])
    assert (ci.low, ci.high) == pytest.approx((case["low"], case["high"]), abs=2e-6)


@pytest.mark.parametrize("case", CASES["mcnemar_exact"])
def test_mcnemar_exact_known_values(case: dict) -> None:
    result = mcnemar(*_pairs(case["only_a"], case["only_b"], both=4, neither=6))
    assert result.p_value == pytest.approx(case["p"])
    total = case["only_a"] + case["only_b"]
    if total:
        assert result.p_value == pytest.approx(scipy_stats.binomtest(case["only_a"], total, 0.5).pvalue)


def test_mcnemar_chi2_with_continuity_correction() -> None:
    result = mcnemar(*_pairs(1, 7), exact=False)
    assert result.statistic == pytest.approx(3.125)  # (|1 - 7| - 1)^2 / 8
    assert result.p_value == pytest.approx(scipy_stats.chi2.sf(3.125, 1))


@pytest.mark.parametrize("case", CASES["adjust"])
def test_adjusted_p_values(case: dict) -> None:
    assert adjust(case["p"], case["method"]) == pytest.approx(case["adjusted"])


def test_unknown_multiplicity_method_is_one_clear_error() -> None:
    with pytest.raises(HarnessError, match="unknown multiplicity method 'sidak'"):
        adjust([0.1], "sidak")


@pytest.mark.parametrize("scores", [[0.0] * 4, [1.0] * 4, [1.0] * 200, [0.3] * 3, [0.0], [0.62] * 50])
def test_no_finite_sample_gets_a_zero_width_interval(scores: list[float]) -> None:
    ci = score_interval(scores)
    assert ci.high - ci.low > 0 and ci.low <= ci.mean <= ci.high


def test_score_interval_picks_the_method_by_the_scores() -> None:
    assert score_interval([0, 1, 1, 0]).method == "clopper-pearson"
    assert score_interval([0.3, 0.3]).method == "wilson"
    assert score_interval([0.2, 0.5, 0.9]).method == "t"
    assert score_interval([0.0, 0.0, 0.0, 0.0]).high == pytest.approx(0.6023646356164746)


@pytest.mark.parametrize("table", [(5, 0, 0, 5), (30, 0, 0, 30), (0, 0, 0, 4), (4, 0, 0, 0), (2, 3, 0, 1)])
def test_paired_intervals_never_collapse(table: tuple[int, int, int, int]) -> None:
    low, high = newcombe_paired(*table)
    delta = (table[1] - table[2]) / sum(table)
    assert low < high and low <= delta <= high


def test_newcombe_interval_covers_at_its_nominal_level() -> None:
    # Coverage of the true p_b - p_a over simulated paired tables (Newcombe reports ~95 % for method 10).
    rng = np.random.default_rng(0)
    for cells in ((0.4, 0.15, 0.05, 0.4), (0.1, 0.1, 0.1, 0.7), (0.6, 0.02, 0.08, 0.3)):
        truth = cells[1] - cells[2]
        tables = rng.multinomial(40, cells, size=600)
        covered = [low <= truth <= high for low, high in (newcombe_paired(*map(int, t)) for t in tables)]
        assert np.mean(covered) >= 0.92, cells


def test_paired_test_on_verdicts_uses_mcnemar_and_newcombe() -> None:
    a, b = _pairs(1, 7, both=20, neither=5)
    result = paired_test(a, b)
    assert (result.test, result.ci_method, result.n) == ("mcnemar", "newcombe", 33)
    assert result.delta == pytest.approx(6 / 33) and result.p_value == pytest.approx(0.0703125)
    assert result.discordance == pytest.approx(8 / 33)
    assert (result.ci_low, result.ci_high) == pytest.approx(newcombe_paired(20, 7, 1, 5))


def test_sign_flip_p_is_exact_by_enumeration() -> None:
    diff = np.array([0.1, 0.2, -0.05, 0.3, 0.15])
    flips = [
        abs(np.mean(diff * np.array(s))) >= abs(diff.mean()) - 1e-12
        for s in itertools.product((1, -1), repeat=diff.size)
    ]
    assert sign_flip_p(diff) == pytest.approx(np.mean(flips))
    assert sign_flip_p(np.zeros(6)) == 1.0


def test_continuous_paired_test() -> None:
    a = np.arange(40) / 64  # binary fractions: a + 1/16 - a is exactly 1/16 for every item
    result = paired_test(a, a + 0.0625)
    assert result.test == "sign-flip" and result.delta == pytest.approx(0.0625)
    assert result.ci_method == "wilson" and result.ci_low < 0.0625 < result.ci_high  # no spread in the diffs
    noisy = paired_test(a, a + np.random.default_rng(1).normal(0.05, 0.05, 40))
    assert noisy.ci_method == "t" and noisy.p_value < 0.001


def _brute_force_power(n: int, p10: float, p01: float, alpha: float) -> float:
    """Every (n10, n01) outcome, weighted by its multinomial probability, tested with scipy."""
    total = 0.0
    for n10 in range(n + 1):
        for n01 in range(n + 1 - n10):
            prob = scipy_stats.multinomial.pmf([n10, n01, n - n10 - n01], n, [p10, p01, 1 - p10 - p01])
            if n10 + n01 and scipy_stats.binomtest(n10, n10 + n01, 0.5).pvalue <= alpha:
                total += prob
    return total


@pytest.mark.parametrize("n,discordance,effect", [(12, 0.3, 0.2), (15, 0.5, 0.1), (10, 0.4, 0.4)])
def test_exact_mcnemar_power_matches_brute_force(n: int, discordance: float, effect: float) -> None:
    p10, p01 = (discordance + effect) / 2, (discordance - effect) / 2
    assert mcnemar_power(n, discordance, effect, 0.05) == pytest.approx(
        _brute_force_power(n, p10, p01, 0.05), abs=1e-9
    )


def test_best_case_mde_by_hand() -> None:
    # All discordances one way: the exact test needs 6 of them (2 / 2^6 < 0.05 < 2 / 2^5), so the
    # best-case MDE at n = 10 solves P(Binomial(10, delta) >= 6) = 0.8.
    expected = brentq(lambda d: scipy_stats.binom.sf(5, 10, d) - 0.8, 0.01, 0.99)
    assert mde(10, None, 0.05) == pytest.approx(expected, abs=1e-6)
    assert mde(4, None, 0.05) is None  # 4 items: p >= 0.125 whatever happens


def test_mde_shrinks_with_n_and_grows_with_discordance() -> None:
    assert mde(500, 0.2, 0.05) < mde(100, 0.2, 0.05) < mde(20, 0.2, 0.05)
    assert mde(500, 0.1, 0.05) < mde(500, 0.4, 0.05)
    assert mde(100, 0.2, 0.05) == pytest.approx(0.128, abs=0.002)
    assert mde(100, 0.2, 0.05, binary=False) < mde(100, 0.2, 0.05)  # the exact test is conservative


def test_n_for_effect_is_close_to_connors_approximation() -> None:
    n = n_for_effect(0.05, 0.2, 0.05)
    z_a, z_b = scipy_stats.norm.ppf(0.975), scipy_stats.norm.ppf(0.8)
    connor = ((z_a * 0.2**0.5 + z_b * (0.2 - 0.05**2) ** 0.5) / 0.05) ** 2
    assert 0.9 * connor < n < 1.15 * connor
    assert mcnemar_power(n, 0.2, 0.05, 0.05) >= 0.8


def test_hierarchical_bootstrap_carries_seed_variance() -> None:
    rng = np.random.default_rng(0)
    items = rng.random(80)
    a = np.tile((items < 0.5).astype(float), (3, 1))
    b_same = np.tile((items < 0.6).astype(float), (3, 1))
    b_noisy = np.stack([(items < t).astype(float) for t in (0.45, 0.6, 0.75)])
    same, noisy = hierarchical_bootstrap(a, b_same), hierarchical_bootstrap(a, b_noisy)
    assert (noisy.ci_high - noisy.ci_low) > 1.5 * (same.ci_high - same.ci_low)
    assert seed_variance_share(b_noisy) > 0.5 and seed_variance_share(b_same) == 0.0
    flat = hierarchical_bootstrap(np.ones((2, 5)), np.ones((2, 5)))
    assert flat.ci_low < 0 < flat.ci_high and flat.p_value == 1.0


def test_align_and_compare_items_report_unmatched() -> None:
    aligned = align({"x": 1.0, "y": 0.0, "z": 1.0}, {"y": 1.0, "z": 1.0, "w": 0.0})
    assert aligned.ids == ("y", "z") and (aligned.only_a, aligned.only_b) == (1, 1)
    comparison = compare_items({"x": 1.0}, {"y": 1.0})
    assert comparison.result is None and comparison.matched == 0
