import json
import re
from pathlib import Path

import pytest

from harness.checkers.choice import extract_letter

CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "cases" / "choice.jsonl").read_text().splitlines()
    if line.strip()
]


def _case_id(index: int, case: dict) -> str:
    return f"{index:02d}-" + re.sub(r"\W+", "-", case["note"]).strip("-")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(i, c) for i, c in enumerate(CASES)])
def test_extract_letter_case(case):
    assert extract_letter(case["response"], n_choices=case["n_choices"]) == case["letter"]


def test_case_file_is_large_enough():
    assert len(CASES) >= 25


def test_none_response_has_no_letter():
    assert extract_letter(None) is None


@pytest.mark.parametrize("n_choices", [0, 27])
def test_rejects_impossible_choice_counts(n_choices):
    with pytest.raises(ValueError):
        extract_letter("The answer is A.", n_choices=n_choices)
