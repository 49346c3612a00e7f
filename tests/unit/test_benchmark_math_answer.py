"""A math Score's answer (the records' `extracted`) is the headline grader's own reading of the
response where that reading is what `extract` gives, and `extract`'s otherwise: the records stay
what they were, and a boxed answer is extracted once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.benchmarks import BENCHMARKS, MathBenchmark
from harness.benchmarks.base import answer_part, kept_scores, score_key
from harness.checkers.math import PRED_MAX_CHARS, check_math

CASES = [json.loads(line) for line in (Path(__file__).parents[1] / "cases" / "math.jsonl").open()]
GRADERS = ("math-verify", "qwen", "both")
LONG = "1" * (PRED_MAX_CHARS + 5)
# Where the grader's reading and `extract` part ways (test_where_the_readings_differ).
EDGES = [
    ("12", "The final answer is 12."),  # no box: math-verify reads 12 from the text
    ("12", "so \\boxed{}"),  # an empty box
    ("", "so \\boxed{1}"),  # no gold to parse
    (LONG, f"so \\boxed{{{LONG}}}"),  # a reading longer than a verdict keeps
    ("12", "The answer is $$"),  # Qwen's reading normalises to nothing
    ("1, 2", "\\boxed{1} and \\boxed{2}"),  # several boxes for a list gold
    ("12", "<think>\\boxed{3}"),  # unclosed thinking: no answer part
]
PAIRS = [(c["gold"], c["response"]) for c in CASES] + EDGES


def _extract_today(bench, doc, response):
    text = answer_part(doc, response).text
    return None if text is None else MathBenchmark.extract(bench, doc, text)


@pytest.mark.parametrize("grader", GRADERS)
def test_the_records_answer_is_what_extract_gives(grader):
    bench = BENCHMARKS["amc23"]
    for gold, response in PAIRS:
        doc = {"id": 1, "gold": gold, "math_grader": grader}
        assert bench.score(doc, response).answer == _extract_today(bench, doc, response), (gold, response)


@pytest.mark.parametrize("grader", GRADERS)
def test_a_boxed_answer_is_extracted_once(grader, monkeypatch):
    calls = []
    original = MathBenchmark.extract
    monkeypatch.setattr(
        MathBenchmark, "extract", lambda self, doc, text: calls.append(text) or original(self, doc, text)
    )
    doc = {"id": 1, "gold": "\\frac{1}{2}", "math_grader": grader}
    score = BENCHMARKS["amc23"].score(doc, "So the answer is $\\boxed{\\dfrac{1}{2}}$.")
    assert (score.answer, score.value["exact_match"], calls) == ("\\dfrac{1}{2}", 1.0, [])


def test_where_the_readings_differ():
    """What the checkers read where the records show something else (kept as they were)."""
    qwen = {"grader": "qwen"}
    assert check_math("12", "The final answer is 12.").pred == "12"  # records: None (no box)
    assert check_math("12", "so \\boxed{}").pred is None  # records: ""
    assert check_math("", "so \\boxed{1}").pred is None  # records: "1"
    assert len(check_math(LONG, f"so \\boxed{{{LONG}}}").pred) == PRED_MAX_CHARS  # records: all of it
    assert check_math("12", "The answer is $$", **qwen).pred is None  # records: "$$"
    assert check_math("12", "The final answer is 12.").boxed is False
    assert check_math("1, 2", "\\boxed{1} and \\boxed{2}").boxed is True


def test_process_results_keeps_its_score_for_the_records():
    bench = BENCHMARKS["amc23"]
    doc, response = {"id": "a1", "gold": "12", "math_grader": "math-verify"}, "so \\boxed{12}"
    assert bench.process_results(doc, [response])["exact_match"] == 1.0  # nothing keeps it: no error
    with kept_scores() as scores:
        metrics = bench.process_results(doc, [response])
    kept = scores[score_key("amc23", doc, response)]
    assert kept.value == metrics and kept.answer == "12"
    assert bench.record_fields(doc, response, kept)["extracted"] == "12"
    # The record's answer is the Score's, whatever extract would say.
    other = type(kept)(kept.value, "the kept answer")
    assert bench.record_fields(doc, response, other)["extracted"] == "the kept answer"
