"""train.report_to: which tracker a run gets, and the TensorBoard files a real training run writes."""

from __future__ import annotations

import json

import pytest
from test_train import FIXTURE, ROWS_USED, TINY, run_with

from cgd import trackers
from cgd.train import TrainConfig, train_method
from harness.errors import HarnessError

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
