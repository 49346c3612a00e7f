"""train.report_to: which tracker a run gets, the TensorBoard files a real training run writes, and the
evaluation summaries that follow training into the same tracker."""

from __future__ import annotations

import csv
import json
import logging
import sys

import pytest
from test_report import make_run
from test_train import FIXTURE, ROWS_USED, TINY, run_with

from cgd.train import TrainConfig, train_method
from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.run import RunDir
from harness_app import tracking
from harness_app.report.build import write_report
from training import trackers

HAVE_TENSORBOARD = trackers.installed("tensorboard")


def test_auto_is_tensorboard_only_where_it_is_installed() -> None:
    assert trackers.resolve("auto", available=lambda package: package == "tensorboard") == "tensorboard"
    assert trackers.resolve("auto", available=lambda package: False) == "none"
    assert trackers.resolve("none", available=lambda package: False) == "none"
    assert trackers.resolve("mlflow", available=lambda package: package == "mlflow") == "mlflow"


def test_a_missing_or_unknown_tracker_is_one_clear_error() -> None:
    with pytest.raises(HarnessError, match="wandb package is not installed"):
        trackers.resolve("wandb", available=lambda package: False)
    with pytest.raises(HarnessError, match="unknown tracker 'comet'.*tensorboard"):
        TrainConfig(report_to="comet")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()][:ROWS_USED]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from harness.models import resolve_model

    return resolve_model(str(tiny_model))


def test_no_tracker_writes_only_the_run_files(tiny, rows, tmp_path) -> None:
    run = run_with(tmp_path, rows, ["sft"])
    summary = train_method(run, "sft", TrainConfig(model=tiny.name, report_to="none", **TINY))
    assert summary["tracker"] == "none"
    assert not run.path("tensorboard").exists()


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed (pip install '.[trackers]')")
def test_tensorboard_gets_every_step_in_the_run_directory(tiny, rows, tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = run_with(tmp_path, rows, ["cgd"])
    first = train_method(run, "cgd", TrainConfig(model=tiny.name, report_to="auto", **TINY))
    assert first["tracker"] == "tensorboard"
    events = EventAccumulator(str(trackers.tensorboard_dir(run.root, "cgd")))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert len(losses) == TINY["max_steps"]
    # The checkpoint directory (swapped in whole at the end) holds no event files.
    assert not list(run.path("train", "cgd", "checkpoint").rglob("events.out.tfevents*"))
    # Another tracker is not another model: the finished stage is reused, not retrained.
    assert train_method(run, "cgd", TrainConfig(model=tiny.name, report_to="none", **TINY)) == first


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard directory: [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed (pip install '.[trackers]')")
def test_an_evaluation_summary_is_one_event_file_that_a_new_summary_replaces(tmp_path) -> None:
    assert trackers.log_evaluation(tmp_path, "cgd", "tensorboard", {"eval/math500/exact_match": 0.25}, 7)
    assert trackers.log_evaluation(tmp_path, "cgd", "auto", {"eval/math500/exact_match": 0.5}, 7)
    log_dir = trackers.tensorboard_dir(tmp_path, "cgd")
    assert len(list(log_dir.glob("events.out.tfevents.*.eval"))) == 1
    assert _scalars(log_dir) == {"eval/math500/exact_match": [(7, 0.5)]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tensorboard"]  # no scratch directory left


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed (pip install '.[trackers]')")
def test_a_compare_logs_each_models_summary_at_its_step_once(tmp_path) -> None:
    root = make_run(tmp_path, methods=("cgd",))
    atomic_write_json(root / layout.train_summary("cgd"), {"steps": 45, "selected_step": 40})
    run = RunDir(root)
    for label in ("base", "cgd"):
        tracking.log_evaluation(run, "tensorboard", label)
    base = _scalars(trackers.tensorboard_dir(root, "base"))
    cgd = _scalars(trackers.tensorboard_dir(root, "cgd"))
    assert set(base) == set(cgd)
    assert {steps[0][0] for steps in base.values()} == {0}
    assert {steps[0][0] for steps in cgd.values()} == {40}  # the selected checkpoint's step
    for task, metric in [("math500", "exact_match"), ("gpqa_diamond", "acc"), ("truthfulqa_mc2", "acc")]:
        for suffix in ("", "_ci_low", "_ci_high"):
            assert f"eval/{task}/{metric}{suffix}" in cgd
        assert cgd[f"eval/{task}/n"] == [(40, 60.0)]
    # Drift levels only where text was generated; lengths in the unit the records carry.
    drift = sorted(tag for tag in cgd if "/drift/" in tag)
    assert drift == [f"eval/math500/drift/{m}" for m in ("critique", "length_tokens", "parseable")]
    # The same numbers as the report's table (in percent there).
    write_report(root, tmp_path / "report")
    with (tmp_path / "report" / "table.csv").open() as handle:
        row = next(r for r in csv.DictReader(handle) if (r["task"], r["model"]) == ("math500", "cgd"))
    for suffix, column in [("", "score"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")]:
        value = cgd[f"eval/math500/exact_match{suffix}"][0][1]
        assert 100 * value == pytest.approx(float(row[column]), abs=0.006)  # the CSV has two decimals
    # A resumed compare: the same summaries are not logged again.
    files = sorted(trackers.tensorboard_dir(root, "cgd").glob("events.*"))
    tracking.log_evaluation(run, "tensorboard", "cgd")
    assert sorted(trackers.tensorboard_dir(root, "cgd").glob("events.*")) == files
    assert "track:cgd" in read_json(root / layout.MANIFEST)["stages"]


def test_a_tracker_that_fails_costs_one_warning_not_the_evaluation(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # not importable, whether installed or not
    with caplog.at_level(logging.WARNING):
        assert not trackers.log_evaluation(tmp_path, "cgd", "wandb", {"eval/math500/exact_match": 0.5}, 3)

    def refused(*args):
        raise ConnectionError("server refused\nwith a long traceback-like second line")

    monkeypatch.setitem(trackers._WRITERS, "mlflow", refused)
    monkeypatch.setattr(trackers, "resolve", lambda report_to: report_to)  # as if mlflow were installed
    with caplog.at_level(logging.WARNING):
        assert not trackers.log_evaluation(tmp_path, "cgd", "mlflow", {"eval/math500/exact_match": 0.5}, 3)
    monkeypatch.undo()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "wandb package is not installed" in lines[0] and "summary of cgd was not logged" in lines[0]
    assert "ConnectionError: server refused" in lines[1]
    # In a compare the stage stays unrecorded, so the next run of the command tries again.
    root = make_run(tmp_path, methods=("cgd",))
    with caplog.at_level(logging.WARNING):
        tracking.log_evaluation(RunDir(root), "wandb", "base")
    assert "summary of base was not logged" in caplog.records[-1].getMessage()
    assert (
        not (root / layout.MANIFEST).exists()
        or "track:base" not in read_json(root / layout.MANIFEST)["stages"]
    )
