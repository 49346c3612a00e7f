"""check_math against Math-Verify's own labelled cases (tests/cases/README.md says where from).

check_math is not math-verify's `parse` + `verify` on raw strings: it wraps the gold as LaTeX,
prefers the last box and tries LaTeX then plain expressions. So full agreement is not expected;
the floor below is what the checker reaches, and a change that lowers it must say why.
"""

from __future__ import annotations

from pathlib import Path

from harness.checkers.math import check_many
from harness.io import read_jsonl

SUITE = read_jsonl(Path(__file__).parents[1] / "cases" / "math_verify_suite.jsonl")

# 216/233 before multi-box answers were joined. The four left: a decimal comma in a gold that
# math-verify's test reads as a plain expression (`1,22`; as LaTeX it is a list), two answers
# split over lines inside `$ ... $` that its LaTeX-only test refuses but the expression fallback
# finds, and "The final answer is $10,455$. I hope it is correct." after earlier boxes, where
# check_math keeps to the last box.
AGREEMENT_FLOOR = 229
KNOWN_DISAGREEMENTS = {
    "test_all.py::test_number_extraction[6]",
    "test_all.py::test_latex_notation[5]",
    "test_all.py::test_latex_notation[6]",
    "test_all.py::test_math_extraction_additional_cases[17]",
}


def test_suite_is_complete():
    assert len(SUITE) == 233
    assert sum(not case["correct"] for case in SUITE) == 25


def test_agreement_with_math_verify_suite(capsys):
    verdicts = check_many([(case["gold"], case["response"]) for case in SUITE], timeout_s=10.0)
    disagreements = {
        case["source"]: f"expected {case['correct']}, got {v.correct} ({v.status}, pred={v.pred!r})"
        for case, v in zip(SUITE, verdicts)
        if v.correct != case["correct"]
    }
    listing = "\n".join(f"{source}: {why}" for source, why in disagreements.items())
    agreed = len(SUITE) - len(disagreements)
    with capsys.disabled():
        print(f"\nMath-Verify suite: {agreed}/{len(SUITE)} = {100 * agreed / len(SUITE):.1f} %")
    assert agreed >= AGREEMENT_FLOOR, listing
    assert set(disagreements) <= KNOWN_DISAGREEMENTS, listing
