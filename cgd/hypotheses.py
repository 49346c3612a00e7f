"""The CGD paper's claims (arXiv 2505.11628) as hypotheses a run tests: the study, kept out of the
evaluation library, which only knows how to test a hypothesis (harness/findings.py). The report, the
planner's family size and the dataframes API all read this one tuple (docs/findings.md, docs/statistics.md).
"""

from __future__ import annotations

from collections.abc import Callable

from cgd.critique_style import CRITIQUE_STYLE
from harness.findings import Hypothesis, RunShape, Test
from harness.rundata import BASE, MATH_TASKS, RunData, is_general


def _present(names: tuple[str, ...] | frozenset[str]) -> Callable[[RunData | RunShape], list[str]]:
    return lambda run: [t for t in run.tasks if t in names]


def _general_but_code(run: RunData | RunShape) -> list[str]:
    """H5's benchmarks: the general ones, except HumanEval (H6 asks for a gain there)."""
    return [t for t in run.tasks if is_general(t) and t != "humaneval"]


HYPOTHESES = (
    Hypothesis(
        "H1",
        "CGD > SFT on math (AMC23, MATH-500, AIME24)",
        "cgd",
        "sft",
        _present(MATH_TASKS),
        (Test("score", "higher"),),
    ),
    Hypothesis("H2", "CGD > CFT on math", "cgd", "cft", _present(MATH_TASKS), (Test("score", "higher"),)),
    Hypothesis(
        "H3",
        "CFT drifts in format vs base: critique-style answers up, parseable final answers down",
        "cft",
        BASE,
        _present(MATH_TASKS),
        (Test(CRITIQUE_STYLE.name, "higher"), Test("parseable", "lower")),
    ),
    Hypothesis(
        "H4", "CFT loses IFEval vs base", "cft", BASE, _present(("ifeval",)), (Test("score", "lower"),)
    ),
    Hypothesis(
        "H5",
        "CGD non-inferior to base on IFEval, TruthfulQA and GPQA",
        "cgd",
        BASE,
        _general_but_code,
        (Test("score", "non-inferior"),),
    ),
    Hypothesis(
        "H6",
        "CGD gains on HumanEval vs base (out of domain)",
        "cgd",
        BASE,
        _present(("humaneval",)),
        (Test("score", "higher"),),
    ),
)
