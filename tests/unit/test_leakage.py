"""Leakage statistics on hand-made critiques with known answers and coverage, and their report table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cgd.teachers.leakage import answer_candidates, leakage_stats, ngram_coverage, states_answer_many
from harness_app.report.leakage import leakage_table

CASES = [json.loads(line) for line in (Path(__file__).parents[1] / "cases" / "leakage.jsonl").open()]
COVERAGE = [c for c in CASES if c["kind"] == "coverage"]
STATED = [c for c in CASES if c["kind"] == "stated"]


@pytest.mark.parametrize("case", COVERAGE, ids=[c["note"] for c in COVERAGE])
def test_coverage_of_hand_made_examples(case):
    got = ngram_coverage(case["refined"], case["critique"])
    assert got == pytest.approx(case["coverage"]) if case["coverage"] is not None else got is None


def test_answer_stated_on_hand_made_examples():
    got = states_answer_many([(c["gold"], c["critique"]) for c in STATED])
    wrong = [c["note"] for c, g in zip(STATED, got) if g is not c["stated"]]
    assert not wrong


def test_candidates_are_spans_their_right_hand_sides_boxes_and_prose_numbers():
    text = "Step 2: we get $y = 3x$, then \\boxed{7} and 12 more.\n3. Done"
    assert answer_candidates(text) == ["7", "y = 3x", "3x", "12"]


def test_stats_of_a_dataset():
    rows = [
        {"answer": "5", "critique": "The answer is $5$.", "refined": "a b c d e f g h"},
        {"answer": "5", "critique": "x a b c d e f y", "refined": "a b c d e f g h"},
        {"answer": "5", "critique": "Recheck the sum.", "refined": "a b c d e f g h"},
        {"answer": "5", "critique": "a b c d e f g h", "refined": "a b c d e f g h"},
    ]
    stats = leakage_stats(rows)
    assert stats["n"] == 4 and stats["ngram"] == 6
    assert stats["answer_stated"]["count"] == 1 and stats["answer_stated"]["mean"] == 0.25
    assert stats["answer_stated"]["method"] == "clopper-pearson"
    coverage = stats["coverage"]
    assert coverage["n"] == 4 and coverage["median"] == 0.375 and coverage["mean"] == pytest.approx(0.4375)
    assert coverage["low"] <= coverage["mean"] <= coverage["high"]
    assert leakage_stats([]) == {"n": 0, "ngram": 6, "answer_stated": None, "coverage": None}


def test_the_report_table_formats_the_metadata():
    leak = {
        "n": 128,
        "ngram": 6,
        "answer_stated": {
            "count": 127,
            "n": 128,
            "mean": 0.9922,
            "low": 0.9572,
            "high": 0.9998,
            "method": "x",
        },
        "coverage": {"median": 0.52, "n": 128, "mean": 0.5, "low": 0.46, "high": 0.54, "method": "bootstrap"},
    }
    table = leakage_table(
        {
            "cgd": {"teacher": {"teacher": "reference", "reveal": "steps"}, "leakage": leak},
            "sft": {"teacher": None, "leakage": None},
        }
    )
    lines = table.splitlines()
    assert lines[2] == (
        "| cgd | reference | steps | – | 128 | 127/128 (99.2% [95.7, 100.0]) | 52.0% | 50.0% [46.0, 54.0] |"
    )
    assert lines[3] == "| sft | – | – | – | – | – | – | – |"
    assert all(line.count("|") == lines[0].count("|") for line in lines)
