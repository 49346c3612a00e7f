"""Experiment trackers: where a training run's per-step metrics go besides train/<label>/log.jsonl.

`train.report_to` (cgd/train_config.py) is passed through to TRL's SFTConfig.report_to, so the
project's fast step logs through the Trainer's own callbacks like TRL's step would:

    auto         tensorboard when the package is installed, else none (the default works without it)
    none         nothing besides the run directory's own files
    tensorboard  offline event files in <run>/tensorboard/<label>/ (`tensorboard --logdir <run>/tensorboard`)
    wandb | trackio | mlflow   the library's own settings decide where (WANDB_MODE=offline, TRACKIO_DIR,
                 MLFLOW_TRACKING_URI, ...); the run is named <run-id>/<label>

The tracker never enters a stage's inputs hash: where metrics are mirrored does not change a model.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from harness import layout
from harness.errors import HarnessError

TRACKERS = ("auto", "none", "tensorboard", "wandb", "trackio", "mlflow")
# The import name each tracker needs; the pip name is the same.
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow"}


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check(report_to: str) -> None:
    if report_to not in TRACKERS:
        raise HarnessError(f"train.report_to: unknown tracker {report_to!r}; valid: {', '.join(TRACKERS)}")


def resolve(report_to: str, available: Callable[[str], bool] = installed) -> str:
    """The tracker to hand to TRL: `auto` picks tensorboard when installed; a named tracker that is
    not installed is one clear error (before any training), not a failure at the first logged step."""
    check(report_to)
    if report_to == "auto":
        return "tensorboard" if available("tensorboard") else "none"
    if report_to != "none" and not available(_PACKAGES[report_to]):
        package = _PACKAGES[report_to]
        raise HarnessError(
            f"train.report_to={report_to}: the {package} package is not installed "
            f"(pip install {package}, or set train.report_to=none)"
        )
    return report_to


def tensorboard_dir(run_root: Path, label: str) -> Path:
    return Path(run_root) / layout.tensorboard(label)


def attach(trainer, log_dir: Path) -> None:
    """Point the trainer's TensorBoard callback at the run directory.

    Its default is under output_dir, which is the checkpoint directory here: swapped in whole by
    atomic_write_dir at the end of training, which would take the event files with it."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(log_dir)
