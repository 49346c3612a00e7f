"""Experiment trackers: where a training run's per-step metrics go besides train/<label>/log.jsonl.

`train.report_to` (training/train_config.py) is passed through to TRL's SFTConfig.report_to, so the
project's fast step logs through the Trainer's own callbacks like TRL's step would:

    auto         tensorboard when the package is installed, else none (the default works without it)
    none         nothing besides the run directory's own files
    tensorboard  offline event files in <run>/tensorboard/<label>/ (`tensorboard --logdir <run>/tensorboard`)
    wandb | trackio | mlflow   the library's own settings decide where (WANDB_MODE=offline, TRACKIO_DIR,
                 MLFLOW_TRACKING_URI, ...); the run is named <run-id>/<label>

The tracker never enters a stage's inputs hash: where metrics are mirrored does not change a model.

`log_evaluation` sends one evaluated model's summary (scalars named `eval/...`, which the application
builds) to the same tracker, under the same name as that model's training, at the trained model's
step (the base model: label `base`, step 0). TensorBoard: one event file per model,
`<run>/tensorboard/<label>/events.out.tfevents.*.eval`, which the next call replaces, so points are
never doubled. wandb and mlflow: a new run per call; trackio: the training's run, reopened by name.
Those keep every call's points, so the caller (harness_app/tracking.py) skips a summary it logged.
A tracker that fails (not installed, offline, refused) costs one warning, never the evaluation.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from harness import layout
from harness.errors import HarnessError

log = logging.getLogger(__name__)

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


# Where the training callbacks of transformers put a wandb or trackio run when nothing is set.
_DEFAULT_PROJECT = "huggingface"


def log_evaluation(
    run_root: Path, label: str, report_to: str, scalars: Mapping[str, float], step: int
) -> bool:
    """Log one model's evaluation summary to the run's tracker; True when it was logged.

    A tracker is optional: any failure (a package missing, a server or login refused, a disk
    error) is one warning line and False, so the evaluation it summarises stands either way."""
    try:
        tracker = resolve(report_to)
        if tracker == "none":
            return True
        name = f"{Path(run_root).resolve().name}/{label}"
        _WRITERS[tracker](Path(run_root), label, name, dict(scalars), step)
    except Exception as exc:  # whatever the tracker raises, the evaluation is already done
        log.warning(
            "train.report_to=%s: the evaluation summary of %s was not logged (%s: %s)",
            report_to,
            label,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "no message",
        )
        return False
    return True


def _tensorboard(run_root: Path, label: str, name: str, scalars: dict[str, float], step: int) -> None:
    """The summary's event file is written whole elsewhere, then moved in place of the previous one:
    a re-logged summary replaces its points, and an interrupted write leaves no half file behind."""
    from torch.utils.tensorboard import SummaryWriter

    target = tensorboard_dir(run_root, label)
    target.mkdir(parents=True, exist_ok=True)
    # Outside tensorboard/, which TensorBoard scans for runs; in the run directory for an atomic rename.
    scratch = Path(tempfile.mkdtemp(prefix=".eval-events-", dir=run_root))
    try:
        writer = SummaryWriter(log_dir=str(scratch), filename_suffix=layout.TENSORBOARD_EVAL_SUFFIX)
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, global_step=step)
        writer.close()
        (written,) = scratch.glob(f"events.out.tfevents.*{layout.TENSORBOARD_EVAL_SUFFIX}")
        for old in target.glob(f"events.out.tfevents.*{layout.TENSORBOARD_EVAL_SUFFIX}"):
            old.unlink()
        os.replace(written, target / written.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _wandb(run_root: Path, label: str, name: str, scalars: dict[str, float], step: int) -> None:
    import wandb

    # A run of its own, named like the training's: wandb reopens a run by its id, which TRL does not keep.
    run = wandb.init(
        project=os.getenv("WANDB_PROJECT", _DEFAULT_PROJECT), name=name, job_type="eval", reinit=True
    )
    run.log(scalars, step=step)
    run.finish()


def _trackio(run_root: Path, label: str, name: str, scalars: dict[str, float], step: int) -> None:
    import trackio

    # transformers opens the training run with resume="allow" under this name: the same run again.
    trackio.init(project=_DEFAULT_PROJECT, name=name, resume="allow")
    trackio.log(scalars, step=step)
    trackio.finish()


def _mlflow(run_root: Path, label: str, name: str, scalars: dict[str, float], step: int) -> None:
    import mlflow

    # MLflow reads MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME itself, as the training's callback does.
    with mlflow.start_run(run_name=name):
        mlflow.log_metrics(scalars, step=step)


_WRITERS: dict[str, Callable[[Path, str, str, dict[str, float], int], None]] = {
    "tensorboard": _tensorboard,
    "wandb": _wandb,
    "trackio": _trackio,
    "mlflow": _mlflow,
}
