"""The Qwen2.5-Math-style grader: its case file, its pieces, and where it parts from math-verify."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.checkers.math import check_many, check_math
from harness.checkers.math_qwen import normalize_answer, qwen_equal
from harness.io import read_jsonl

CASES = read_jsonl(Path(__file__).parents[1] / "cases" / "math_qwen.jsonl")


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i:02d}-" + re.sub(r"\W+", "-", c["note"])[:50] for i, c in enumerate(CASES)]
)
def test_qwen_case(case):
    verdict = check_math(case["gold"], case["response"], grader="qwen")
    assert verdict.status == case.get("status", "ok")
    assert verdict.correct == case["correct"]


def test_case_file_has_both_outcomes():
    assert len(CASES) >= 40
    assert 10 <= sum(not c["correct"] for c in CASES) <= len(CASES) - 10


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\frac12", "\\frac{1}{2}"),
        ("3/4", "\\frac{3}{4}"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("10 \\text{ cm}", "10"),
        ("x = 5", "5"),
        ("27.000", "27"),
        (".5", "0.5"),
        ("\\begin{bmatrix}1\\end{bmatrix}", "\\begin{pmatrix}1\\end{pmatrix}"),
        ("\\sqrt2", "\\sqrt{2}"),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


def test_graders_part_where_documented():
    # math-verify: a bare 50 never matches 0.5; Qwen tries the gold as a percentage too.
    assert not check_math("0.5", "\\boxed{50}").correct
    assert check_math("0.5", "\\boxed{50}", grader="qwen").correct
    # Qwen compares interval ends and ignores the brackets; math-verify does not.
    assert not check_math("[-2, 2]", "\\boxed{(-2, 2)}").correct
    assert check_math("[-2, 2]", "\\boxed{(-2, 2)}", grader="qwen").correct


def test_qwen_equal_is_total():
    assert qwen_equal(None, "1") is False
    assert qwen_equal("", "1") is False
    assert qwen_equal("\\frac{", "}") is False


def test_unknown_grader_is_refused():
    with pytest.raises(ValueError, match="unknown math grader"):
        check_math("1", "\\boxed{1}", grader="nope")


def test_qwen_in_workers_keeps_order_and_times_out():
    items = [(str(i), f"\\boxed{{{i}}}") for i in range(17)] + [("5", "\\boxed{9^{9^{9^{9^{9}}}}}")]
    verdicts = check_many(items, timeout_s=1.0, workers=2, grader="qwen")
    assert [v.correct for v in verdicts[:17]] == [True] * 17
    assert verdicts[-1].correct is False and verdicts[-1].status in {"timeout", "ok"}


def test_answers_are_parsed_never_run(tmp_path):
    # sympy's parse_expr evaluates Python: a model's answer must never get there as code.
    marker = tmp_path / "ran"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"exec(bytes.fromhex('{f'open({str(marker)!r}, chr(119))'.encode().hex()}'))",
        "sympify(Symbol(chr(49)))",
    ]
    for payload in payloads:
        for response in (f"\\boxed{{{payload}}}", f"The answer is {payload}"):
            verdict = check_math("1", response, grader="qwen")
            assert verdict.correct is False
    assert not marker.exists()


def test_the_qwen_grader_does_not_import_the_math_verify_checker():
    """math_qwen and math share math_common; math imports math_qwen (lazily), never the other way."""
    import subprocess
    import sys

    code = "import sys, harness.checkers.math_qwen; print('harness.checkers.math' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
