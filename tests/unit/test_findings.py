"""Verdicts: the rule on constructed comparisons, and the paper's hypotheses on a constructed run
where one is clearly supported, one clearly contradicted and one inconclusive."""

from __future__ import annotations

import pytest
from test_report import _gpqa_record, _math_record, _mc2_record, write_eval

from cgd.hypotheses import HYPOTHESES
from harness.drift import Change
from harness.errors import HarnessError
from harness.findings import AnalysisConfig, RunShape, analyse, family_keys, verdict
from harness.io import atomic_write_json
from harness.plan import family_size, planned_shape
from harness.rundata import RunData
from harness.stats import ItemComparison, PairedTest

N = 60


def _change(delta: float, low: float, high: float, p_adjusted: float, quantity: str = "acc") -> Change:
    result = PairedTest("mcnemar", 100, 0.5, 0.5 + delta, delta, low, high, p_adjusted, 0.2, "newcombe")
    return Change(
        "cgd",
        "ifeval",
        quantity,
        "ifeval",
        0.5,
        0.5 + delta,
        ItemComparison(result, 100, 0, 0),
        0.05,
        p_adjusted=p_adjusted,
    )


@pytest.mark.parametrize(
    "delta,low,high,p,quantity,expected",
    [
        (0.10, 0.05, 0.15, 0.001, "acc", "better"),
        (-0.10, -0.15, -0.05, 0.001, "acc", "worse"),
        (0.10, 0.05, 0.15, 0.001, "critique", "higher"),
        (0.00, -0.01, 0.01, 0.9, "acc", "equivalent"),
        (0.03, -0.01, 0.07, 0.2, "acc", "non-inferior"),
        (0.00, -0.08, 0.08, 0.9, "acc", "inconclusive"),
        (-0.06, -0.10, -0.01, 0.2, "acc", "no difference shown"),  # a drop the adjustment did not confirm
        (5.0, 1.0, 9.0, 0.2, "length", "no difference shown"),  # no margin in tokens
    ],
)
def test_verdict_rule(delta, low, high, p, quantity, expected) -> None:
    assert verdict(_change(delta, low, high, p, quantity), AnalysisConfig(margin=2.0)) == expected


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"margin": -1.0}, "analysis.margin must be >= 0"),
        ({"multiplicity": "sidak"}, "unknown multiplicity method"),
        ({"alpha": 1.5}, "analysis.alpha must be between 0 and 1"),
    ],
)
def test_bad_analysis_config_is_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        AnalysisConfig(**kwargs)


def _samples(math: list[bool], critique: bool, gpqa: list[bool]) -> dict[str, list[dict]]:
    return {
        "math500": [_math_record(i, c, critique) for i, c in enumerate(math)],
        "gpqa_diamond": [_gpqa_record(i, c) for i, c in enumerate(gpqa)],
        "truthfulqa_mc2": [_mc2_record(i, 0.4 + 0.01 * (i % 5)) for i in range(N)],
    }


@pytest.fixture(scope="module")
def findings_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("findings") / "run"
    atomic_write_json(
        run / "config.json",
        {
            "git_revision": "abc1234",
            "seeds": [0],
            "methods": ["sft", "cft", "cgd"],
            "profile": "test",
            "analysis": {"margin": 2.0, "multiplicity": "holm"},
        },
    )
    half = [i % 2 == 0 for i in range(N)]
    # cgd differs from sft on 6 items, 3 each way: no difference, and an interval far wider than the margin.
    cgd_math = [(not c) if i in (0, 2, 4, 1, 3, 5) else c for i, c in enumerate(half)]
    write_eval(run, "base", _samples(half, False, half))
    write_eval(run, "sft", _samples(half, False, half))
    write_eval(run, "cft", _samples([False] * N, True, half))  # critiques only: H3 and H2
    write_eval(run, "cgd", _samples(cgd_math, False, [False] * N))  # loses every GPQA item: H5
    return run


@pytest.fixture(scope="module")
def analysis(findings_run) -> list:
    return analyse(RunData(findings_run), AnalysisConfig(), HYPOTHESES)


def test_planner_family_is_the_reports_family(findings_run, analysis) -> None:
    # The planner reads benchmarks and methods off a config; the report builds its family from the
    # run's files. Both must give the same comparisons (the old count said 56 where a run had 44).
    config = {"eval": {"benchmarks": "math500,gpqa_diamond,truthfulqa_mc2"}, "methods": ["sft", "cft", "cgd"]}
    actual = {(c.method, c.reference, c.task, c.quantity) for c in analysis.family}
    assert family_keys(planned_shape(config), HYPOTHESES) == actual
    assert actual == family_keys(RunShape.of(RunData(findings_run)), HYPOTHESES)
    assert family_size(config, HYPOTHESES) == len(analysis.family)


def test_hypotheses_come_out_as_constructed(analysis) -> None:
    verdicts = {f.hypothesis.key: f.verdict for f in analysis.findings}
    assert verdicts == {
        "H1": "inconclusive",
        "H2": "supported",
        "H3": "supported",
        "H4": "not tested",
        "H5": "contradicted",
        "H6": "not tested",
    }
    h1 = next(f for f in analysis.findings if f.hypothesis.key == "H1")
    ((_, change),) = h1.evidence
    assert change.delta == 0 and change.verdict == "inconclusive" and change.mde is not None
    assert change.comparison.result.ci_low < -0.02 and change.comparison.result.ci_high > 0.02


def test_the_family_is_adjusted_together(analysis) -> None:
    family = analysis.family
    assert len({c.key for c in family}) == len(family)
    assert any(c.reference == "sft" for c in family) and any(c.reference == "cft" for c in family)
    assert all(c.p_adjusted >= c.p_value for c in family)
    smallest = min(family, key=lambda c: c.p_value)
    assert smallest.p_adjusted == pytest.approx(min(1.0, smallest.p_value * len(family)))
