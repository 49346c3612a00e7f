"""harness.items_df / summary_df, harness_app.comparisons_df / findings_df over run directories, and the
parquet files beside each evaluation's JSONL: typed columns, GPQA without text, bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import N_ITEMS, make_run

import harness
import harness_app
from cgd.hypotheses import HYPOTHESES
from harness import frames
from harness.errors import HarnessError
from harness.findings import AnalysisConfig, analyse
from harness.io import atomic_write_json, read_json, read_jsonl
from harness.rundata import RunData
from harness.stats import score_interval
from harness_app import frames as study_frames

pytestmark = pytest.mark.unit

GPQA_SECRET = "A photon of wavelength 500 nm strikes a caesium surface in the secret question"


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("frames"))


def test_items_one_row_per_item_with_typed_columns_and_config(run: Path) -> None:
    items = harness.items_df(run)
    assert len(items) == 4 * 3 * N_ITEMS  # base + 3 methods, 3 benchmarks
    dtypes = _dtypes(items)
    assert {k: dtypes[k] for k in frames.item_columns()} == frames.item_columns()
    assert dtypes["config.profile"] == "string" and dtypes["config.git_revision"] == "string"
    assert set(items["config.profile"]) == {"test"}
    assert items.loc[items.label == "base", "seed"].isna().all()
    assert set(items.loc[items.label == "cgd", "seed"]) == {0}
    # Scores are the records' headline metric, item for item.
    records = {r["item_id"]: r for r in read_jsonl(run / "eval" / "cft" / "samples_math500.jsonl")}
    cft = items[(items.label == "cft") & (items.benchmark == "math500")]
    for row in cft.itertuples():
        assert row.score == records[row.item_id]["metrics"]["exact_match"]
        assert row.critique_style == ("Conclusion: wrong" in records[row.item_id]["response"])
        assert row.no_answer == (records[row.item_id]["extracted"] is None)
    assert cft.item_id.tolist() == [f"math500-{i}" for i in range(N_ITEMS)]  # natural order


def test_gpqa_text_never_reaches_a_frame(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = run / "eval" / "cgd" / "samples_gpqa_diamond.jsonl"
    leaky = [
        {**r, "prompt": GPQA_SECRET, "response": GPQA_SECRET + " so (A)", "gold": GPQA_SECRET}
        for r in read_jsonl(path)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in leaky))
    items = harness.items_df(run)
    gpqa = items[items.benchmark == "gpqa_diamond"]
    assert gpqa.prompt.isna().all() and gpqa.response.isna().all() and gpqa.critique_style.isna().all()
    assert set(gpqa.loc[gpqa.label == "base", "gold"]) == {"A"}  # letters stay
    assert gpqa.loc[gpqa.label == "cgd", "gold"].isna().all()  # a text where a letter belongs goes
    text = items.astype("string").fillna("").to_numpy().ravel()
    assert not any("secret question" in cell for cell in text)


def test_half_finished_run_gives_an_empty_typed_frame(tmp_path: Path) -> None:
    run = tmp_path / "half"
    atomic_write_json(run / "config.json", {"profile": "ci", "train": {"learning_rate": 1e-3}})
    for call, columns in (
        (harness.items_df, frames.item_columns()),
        (harness.summary_df, frames.SUMMARY_COLUMNS),
        (harness_app.comparisons_df, study_frames.COMPARISON_COLUMNS),
        (harness_app.findings_df, study_frames.FINDING_COLUMNS),
    ):
        frame = call(run)
        assert frame.empty
        assert {k: v for k, v in _dtypes(frame).items() if k in columns} == columns
    assert _dtypes(harness.items_df(run))["config.train.learning_rate"] == "Float64"


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_not_a_run_is_one_clear_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "x"
    if kind == "empty":
        target.mkdir()
    elif kind == "file":
        target.write_text("not a run")
    with pytest.raises(HarnessError) as err:
        harness.items_df(target)
    assert "\n" not in str(err.value) and str(target) in str(err.value)


def test_two_runs_that_differ_in_one_key(tmp_path: Path) -> None:
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    for run, lr in ((a, 1e-3), (b, 5e-5)):
        config = read_json(run / "config.json")
        atomic_write_json(run / "config.json", {**config, "train": {"learning_rate": lr, "max_steps": 2}})
    items = harness.items_df([a, b])
    assert _dtypes(items)["config.train.learning_rate"] == "Float64"
    assert _dtypes(items)["config.train.max_steps"] == "Int64"
    by_lr = items.groupby("config.train.learning_rate").size()
    assert by_lr.to_dict() == {5e-5: 4 * 3 * N_ITEMS, 1e-3: 4 * 3 * N_ITEMS}
    with pytest.raises(HarnessError, match="the same run given twice"):
        harness.items_df([a, a])


def test_summary_is_score_interval_of_the_items(run: Path) -> None:
    summary = harness.summary_df(run)
    assert _dtypes(summary) == frames.SUMMARY_COLUMNS
    data = RunData(run)
    for row in summary.itertuples():
        scores = list(data.item_scores(row.label, row.benchmark, row.metric).values())
        interval = score_interval(scores)
        assert (row.n, row.score, row.ci_low, row.ci_high) == (
            interval.n,
            interval.mean,
            interval.low,
            interval.high,
        )
    assert len(summary) == 4 * 3


def test_comparisons_are_the_findings_family(run: Path) -> None:
    comparisons = harness_app.comparisons_df(run)
    assert _dtypes(comparisons) == study_frames.COMPARISON_COLUMNS
    analysis = analyse(RunData(run), AnalysisConfig(), HYPOTHESES)
    tested = {(c.method, c.reference, c.task, c.quantity): c for c in analysis.family}
    assert len(tested) > 0
    rows = comparisons.set_index(["method", "reference", "benchmark", "quantity"])
    for key, change in tested.items():
        row = rows.loc[key]
        assert row["p_adjusted"] == change.p_adjusted and row["verdict"] == change.verdict
        assert np.isclose(row["delta"], change.delta)
    # cgd vs sft (H1) is in the family though it is not a comparison against base.
    assert ("cgd", "sft", "math500", "exact_match") in rows.index
    findings = harness_app.findings_df(run)
    assert findings.hypothesis.tolist() == ["H1", "H2", "H3", "H4", "H5", "H6"]


def test_parquet_beside_the_jsonl_holds_the_same_records(tmp_path: Path, run: Path) -> None:
    from harness.eval_files import write_eval_files

    records = {
        "math500": read_jsonl(run / "eval" / "cft" / "samples_math500.jsonl"),
        "gpqa_diamond": [
            {**r, "prompt": GPQA_SECRET}
            for r in read_jsonl(run / "eval" / "cft" / "samples_gpqa_diamond.jsonl")
        ],
    }
    payload = read_json(run / "eval" / "cft" / "results.json")
    write_eval_files(tmp_path, "cft", payload, records, {"math500": [], "gpqa_diamond": []})
    math = pd.read_parquet(tmp_path / "samples_math500.parquet", dtype_backend="numpy_nullable")
    assert math.item_id.tolist() == [r["item_id"] for r in records["math500"]]
    assert math.score.tolist() == [r["metrics"]["exact_match"] for r in records["math500"]]
    assert math["metrics.timeout"].tolist() == [0.0] * len(records["math500"])
    assert str(math.score.dtype) == "Float64" and str(math.completion_tokens.dtype) == "Int64"
    gpqa = pd.read_parquet(tmp_path / "samples_gpqa_diamond.parquet")
    assert gpqa.prompt.isna().all()
    cells = gpqa.astype("string").fillna("").to_numpy().ravel()
    assert not any("secret question" in cell for cell in cells)
