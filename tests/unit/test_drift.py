"""Format-drift detectors on labelled answers (the library's final-answer detector, the CGD study's
critique-style one), per-item drift measures, forgetting and paragraphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report import make_run

from cgd.critique_style import is_critique
from harness.benchmarks.ifeval import ifeval_format_pass
from harness.drift import (
    changes_vs_base,
    forgetting,
    has_final_answer,
    item_measures,
    paragraphs,
    response_length,
)
from harness.rundata import RunData

CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "cases" / "drift_answers.jsonl").read_text().splitlines()
    if line.strip()
]


def test_case_file_has_both_kinds() -> None:
    assert len(CASES) >= 20
    assert sum(c["critique"] for c in CASES) >= 8 and sum(not c["critique"] for c in CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_critique_detector(case: dict) -> None:
    assert is_critique(case["response"]) is case["critique"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_final_answer_detector(case: dict) -> None:
    assert has_final_answer(case["task"], case["response"]) is case["parseable"]


def test_final_answer_without_text_uses_the_extraction() -> None:
    # GPQA records keep no response text; the checker's extracted letter decides.
    assert has_final_answer("gpqa_diamond_cot", None, "C") is True
    assert has_final_answer("gpqa_diamond_cot", None, "") is False
    assert has_final_answer("gpqa_diamond_cot", None, None) is False
    assert has_final_answer("gpqa_diamond_cot", None) is None
    assert has_final_answer("truthfulqa_mc1", "anything") is None


def test_length_prefers_tokens_and_falls_back_to_characters() -> None:
    assert response_length({"completion_tokens": 12, "response": "abc"}) == (12.0, "tokens")
    assert response_length({"response": "abcd"}) == (4.0, "chars")
    assert response_length({}) is None


def test_ifeval_format_instructions_only() -> None:
    record = {
        "instruction_id_list": [
            "detectable_format:title",
            "length_constraints:number_words",
            "change_case:english_lowercase",
            "punctuation:no_comma",
        ],
        "metrics": {"inst_level_strict_acc": [True, False, False, True]},
    }
    assert ifeval_format_pass(record) == pytest.approx(2 / 3)
    assert ifeval_format_pass({"metrics": {"inst_level_strict_acc": [True]}}) is None
    assert (
        ifeval_format_pass(
            {"instruction_id_list": ["length_constraints:x"], "metrics": {"inst_level_strict_acc": [True]}}
        )
        is None
    )


def test_mixed_length_units_are_not_averaged() -> None:
    records = [
        {"item_id": "a", "response": "xx", "completion_tokens": 5},
        {"item_id": "b", "response": "yyy"},
    ]
    measures = item_measures(records, "math500")
    assert measures.values["length"] == {} and measures.length_unit == ""
    assert measures.values["parseable"] == {"a": 0.0, "b": 0.0}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunData:
    return RunData(make_run(tmp_path_factory.mktemp("drift")))


def test_forgetting_flags_only_significant_general_drops(run: RunData) -> None:
    flagged = {(c.method, c.task) for c in forgetting(run) if c.significant}
    assert flagged == {("cft", "truthfulqa_mc2")}
    cft = next(c for c in forgetting(run) if (c.method, c.task) == ("cft", "truthfulqa_mc2"))
    assert cft.delta < 0 and cft.comparison.matched == 60 and cft.comparison.result.test == "sign-flip"


def test_drift_changes_are_tested_against_base(run: RunData) -> None:
    critique = {c.method: c for c in changes_vs_base(run) if c.quantity == "critique"}
    assert critique["cft"].significant and critique["cft"].delta > 0.4
    assert not critique["cgd"].significant and critique["cgd"].delta == 0


def test_paragraphs_state_what_moved_and_what_did_not(run: RunData) -> None:
    text = paragraphs(run)
    assert list(text) == ["sft", "cft", "cgd"]
    cft = text["cft"]
    assert "Moved significantly" in cft
    assert "truthfulqa_mc2 down" in cft and "sign-flip test" in cft
    assert "critique-style answers on math500 up" in cft
    assert "mean response length on math500 up" in cft and "tokens" in cft
    assert "Forgetting flagged on: truthfulqa_mc2" in cft
    assert "No significant change in: gpqa_diamond" in cft
    sft = text["sft"]
    assert "Nothing moved significantly" in sft and "truthfulqa_mc2 (+" in sft
    assert "Forgetting" not in text["cgd"]


def test_seeds_are_averaged_per_item(tmp_path: Path) -> None:
    run = RunData(make_run(tmp_path, methods=("cft",), seeds=(0, 1)))
    assert run.groups == {"base": ["base"], "cft": ["cft@seed0", "cft@seed1"]}
    scores = run.group_item_scores("cft", "gpqa_diamond", "acc")
    assert set(scores.values()) <= {0.0, 0.5, 1.0} and len(scores) == 60
    assert any(c.method == "cft" and c.task == "truthfulqa_mc2" for c in forgetting(run))


def test_unclosed_thinking_share_counts_only_records_that_say_how_thinking_ended():
    from harness.drift import unclosed_share

    records = [
        {"thinking": "unclosed"},
        {"thinking": "closed"},
        {"thinking": "none"},
        {"thinking": "unclosed"},
    ]
    assert unclosed_share(records) == 0.5
    assert unclosed_share([{"response": "no thinking field: an older record"}]) is None
