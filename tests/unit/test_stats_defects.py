"""One test per statistical defect an independent check found (issue 27), against reference values
computed outside this code (tests/cases/stats_defects.json says how each was obtained)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cgd.hypotheses import HYPOTHESES
from harness.drift import Change
from harness.errors import HarnessError
from harness.findings import AnalysisConfig, _judge, settle
from harness.stats import (
    ItemComparison,
    aggregate_interval,
    compare_items,
    hierarchical_bootstrap,
    interval_text,
    mcnemar_p,
    mde_spread,
    newcombe_paired,
    paired_test,
    score_interval,
)

CASES = json.loads((Path(__file__).parents[1] / "cases" / "stats_defects.json").read_text())


def _table(only_a: int, only_b: int, both: int, neither: int) -> tuple[list[int], list[int]]:
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


def _change(result, task: str = "ifeval", method: str = "cgd") -> Change:
    return Change(
        method, task, "acc", task, result.mean_a, result.mean_b, ItemComparison(result, result.n, 0, 0), 0.05
    )


# 1. Newcombe's method 10 keeps its continuity-corrected phi; no interval contradicts McNemar.


@pytest.mark.parametrize("case", CASES["newcombe_table_iii"])
def test_newcombe_matches_the_papers_table(case: dict) -> None:
    low, high = newcombe_paired(case["both"], case["only_b"], case["only_a"], case["neither"])
    assert (round(low, 4), round(high, 4)) == (case["low"], case["high"])


@pytest.mark.parametrize("n", [4, 8, 20, 100, 300])
def test_interval_contains_zero_when_mcnemar_does_not_reject(n: int) -> None:
    result = paired_test(*_table(0, 4, 0, n - 4))
    assert result.p_value == pytest.approx(0.125)
    assert result.ci_low <= 0.0 <= result.ci_high


def test_gpqa_sized_table_is_no_longer_non_inferior() -> None:
    # n = 198, 10 vs 6 discordant: without the correction the interval's lower end cleared -2 points
    # (-1.94); with it, -2.06.
    result = paired_test(*_table(6, 10, 60, 122))
    change = settle([_change(result, "gpqa_diamond_cot")], AnalysisConfig(margin=2.0))[0]
    assert result.ci_low < -0.02 and change.verdict == "inconclusive"


# 2. Several seeds: the p-value has no floor that one item can reach.


@pytest.mark.parametrize("items", [1, 2])
def test_hierarchical_p_is_valid_with_one_or_two_items(items: int) -> None:
    h = hierarchical_bootstrap(np.zeros((2, items)), np.ones((2, items)))
    assert h.p_value >= 0.5  # the exact sign-flip test's smallest p: 2 / 2^items
    assert h.ci_low <= 0.0 <= h.ci_high


# 3. Continuous scores: Student's t at small n, and no equivalence from a handful of items.


@pytest.mark.parametrize("case", CASES["t_interval"])
def test_continuous_interval_is_students_t(case: dict) -> None:
    diff = np.asarray(case["diff"])
    result = paired_test(np.full(diff.size, 0.4), 0.4 + diff)
    assert result.ci_method == "t"
    assert (result.ci_low, result.ci_high) == pytest.approx((case["low"], case["high"]), abs=1e-9)


def test_four_mc2_items_cannot_be_equivalent() -> None:
    a = np.array([0.41, 0.52, 0.33, 0.60])
    result = paired_test(a, a + np.array([0.0, 0.01, 0.0, 0.005]))
    change = settle([_change(result, "truthfulqa_mc2")], AnalysisConfig(margin=2.0))[0]
    assert change.verdict == "too few items"
    h5 = next(h for h in HYPOTHESES if h.key == "H5")
    word, why = _judge(h5, [(h5.tests[0], change)], AnalysisConfig(margin=2.0))
    assert word == "inconclusive" and why.startswith("too few items")


# 4. One matched continuous item: a result, not a traceback.


def test_one_continuous_item_gives_the_widest_interval() -> None:
    result = paired_test([0.40], [0.45])
    assert result.p_value == 1.0 and (result.ci_low, result.ci_high) == (-1.0, 1.0)


@pytest.mark.parametrize("bad", [[float("nan"), 0.5], [0.2, float("inf")]])
def test_non_finite_scores_are_one_clear_error(bad: list[float]) -> None:
    with pytest.raises(HarnessError, match="finite"):
        paired_test([0.1, 0.2], bad)


def test_no_shared_items_is_no_result() -> None:
    comparison = compare_items({"a": 1.0}, {"b": 0.0})
    assert comparison.result is None and (comparison.only_a, comparison.only_b) == (1, 1)


# 5. IFEval instructions are clustered in prompts.


@pytest.mark.parametrize("case", CASES["sign_flip_exact"])
def test_clustered_test_is_exact_over_prompts(case: dict) -> None:
    a, b, clusters = [], [], []
    for prompt, total in enumerate(case["cluster_sums"]):
        units = max(abs(total), 1) + 1  # enough instructions to hold the sum, plus one unchanged
        for k in range(units):
            flipped = k < abs(total)
            a.append(0.0 if flipped and total > 0 else 1.0 if flipped else 0.0)
            b.append(1.0 if flipped and total > 0 else 0.0)
            clusters.append(f"p{prompt}")
    result = paired_test(a, b, clusters=clusters)
    assert result.clusters == len(case["cluster_sums"]) and result.ci_method in ("cluster-t", "wilson")
    assert result.p_value == pytest.approx(case["p"])


def test_ifeval_instruction_units_are_tested_per_prompt() -> None:
    base = {f"{p}#{k}": 0.0 for p in range(4) for k in range(4)}
    cgd = dict.fromkeys(base, 1.0)
    from harness.rundata import unit_cluster

    result = compare_items(base, cgd, cluster_of=unit_cluster).result
    assert result.p_value == pytest.approx(0.125) and result.clusters == 4
    assert result.ci_low <= 0.0
    assert compare_items(base, cgd).result.p_value < 1e-4  # what counting instructions as units said


# 6. The MDE of continuous scores comes from their observed spread.


@pytest.mark.parametrize("case", CASES["mde_t"])
def test_continuous_mde_uses_the_observed_spread(case: dict) -> None:
    stderr = case["sd"] / math.sqrt(case["n"])
    assert mde_spread(case["n"], stderr, 0.05) == pytest.approx(case["mde"], rel=0.01)
    assert mde_spread(4, stderr, 0.05) is None  # 2 / 2^4 > 0.05: nothing is detectable


# 7. A significant drop inside the margin: the reason says what happened.


def test_significant_drop_within_the_margin_keeps_non_inferiority() -> None:
    n = 2000
    result = paired_test(*_table(12, 2, 700, n - 714))  # -0.5 points, p < 0.05, interval within 2
    assert result.p_value < 0.05 and -0.02 < result.ci_low < result.ci_high < 0
    change = settle([_change(result)], AnalysisConfig(margin=2.0, multiplicity="none"))[0]
    assert change.verdict == "worse"
    h5 = next(h for h in HYPOTHESES if h.key == "H5")
    word, why = _judge(h5, [(h5.tests[0], change)], AnalysisConfig(margin=2.0))
    assert word == "supported" and "significant drops within the margin: ifeval -0.5" in why
    assert "reaches below" not in why


# 8. No interval prints as a point.


def test_interval_text_never_shows_a_point() -> None:
    text = interval_text(10.7900, 10.78996, 10.79004)
    low, high = text.split("[")[1].rstrip("]").split(", ")
    assert low != high
    assert "no interval" in interval_text(1.0, None, None)


# 9. Smaller ones.


def test_aggregate_interval_stays_in_the_unit_range() -> None:
    ci = aggregate_interval(0.98, 0.05, 30)
    assert 0.0 <= ci.low and ci.high <= 1.0


def test_renaming_items_does_not_move_bootstrap_bounds() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random((3, 60)) < 0.4).astype(float)
    b = (rng.random((3, 60)) < 0.55).astype(float)
    first = hierarchical_bootstrap(a, b)
    for _ in range(3):
        order = rng.permutation(60)
        again = hierarchical_bootstrap(a[:, order], b[:, order])
        assert (again.ci_low, again.ci_high, again.p_value) == (first.ci_low, first.ci_high, first.p_value)


@pytest.mark.parametrize("case", CASES["mcnemar_log10_p"])
def test_mcnemar_p_does_not_underflow(case: dict) -> None:
    p = mcnemar_p(case["only_a"], case["only_b"])
    assert p > 0.0
    if case["log10_p"] > -300:  # below that a float holds too few digits to compare logs
        assert math.log10(p) == pytest.approx(case["log10_p"], abs=1e-6)
    assert mcnemar_p(0, 1200) > 0.0


def test_ifeval_instruction_score_interval_is_per_prompt() -> None:
    # 8 prompts of 4 instructions, all right or all wrong by prompt: 32 instruction units, 8 independent.
    scores = [float(p % 2) for p in range(8) for _ in range(4)]
    clusters = [f"p{p}" for p in range(8) for _ in range(4)]
    clustered = score_interval(scores, clusters=clusters)
    assert clustered.method == "cluster-t" and clustered.mean == 0.5
    assert clustered.high - clustered.low > score_interval(scores).high - score_interval(scores).low


def test_wilson_keeps_its_mean_inside_at_zero_and_n() -> None:
    # A report draws error bars mean - low and high - mean; rounding put a low of 1e-17 above a mean of
    # 0 (every IFEval prompt failed: the clustered no-spread bound), which matplotlib refused.
    from harness.stats import wilson

    for n in range(1, 400):
        assert wilson(0.0, n).low <= 0.0 and wilson(1.0, n).high >= 1.0
