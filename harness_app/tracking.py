"""An evaluated model's summary in the run's experiment tracker (`train.report_to`), beside its training.

The scalars, all from the run directory's own files (fractions in [0, 1], as results.json has them):

    eval/<task>/<metric>                     every table column: each headline and extra metric
    eval/<task>/<metric>_ci_low, _ci_high    its 95 % interval, the one the report's table shows
    eval/<task>/n                            items scored on the headline metric
    eval/<task>/drift/<measure>              generated benchmarks: parseable, each study's measure
                                             (CGD's critique, cgd/critique_style.py) and the
                                             benchmark's own (Benchmark.drift_extras), as shares;
                                             length_tokens or length_chars (a mean)

at the step of the trained model that was evaluated (its selected checkpoint; the last step unless
train.select chose an earlier one), and step 0 for the base model. Writing is training/trackers.py's.
"""

from __future__ import annotations

import logging

from harness import layout
from harness.drift import item_measures
from harness.errors import HarnessError
from harness.io import read_json, stable_hash
from harness.run import RunDir
from harness.rundata import BASE, LOGLIKELIHOOD_TASKS, RunData

log = logging.getLogger(__name__)


def eval_scalars(run: RunData, label: str) -> dict[str, float]:
    """`label`'s summary, tag -> value; the scores and intervals are the report's own (one seed each)."""
    from harness_app.scores import label_score

    scalars: dict[str, float] = {}
    for task, metric in run.columns():
        if task not in run.tasks_of(label) or (score := label_score(run, label, task, metric)) is None:
            continue
        scalars[f"eval/{task}/{metric}"] = score.mean / 100
        if score.low is not None and score.high is not None:
            scalars[f"eval/{task}/{metric}_ci_low"] = score.low / 100
            scalars[f"eval/{task}/{metric}_ci_high"] = score.high / 100
        if metric == run.headline(task):
            scalars[f"eval/{task}/n"] = float(score.n_items)
    for task in run.tasks_of(label):
        if task in LOGLIKELIHOOD_TASKS:  # scored over fixed options: nothing generated to drift
            continue
        measures = item_measures(run.samples(label, task), task)
        for measure, values in measures.values.items():
            if not values:
                continue
            name = f"length_{measures.length_unit}" if measure == "length" else measure
            scalars[f"eval/{task}/drift/{name}"] = sum(values.values()) / len(values)
    return scalars


def trained_step(run: RunDir, label: str) -> int:
    """The step of the model that was evaluated: 0 for the base model, which was never trained."""
    if label == BASE:
        return 0
    summary = read_json(run.path(layout.train_summary(label)))
    return int(summary.get("selected_step", summary["steps"]))


def log_evaluation(run: RunDir, report_to: str, label: str) -> None:
    """Log `label`'s evaluation summary to the tracker, once per summary and tracker.

    Recorded in the manifest as a stage of its own, keyed by the tracker, the step and the scalars:
    a resumed or re-run compare whose evaluation did not change logs nothing again; a changed
    evaluation, or another tracker for the same run directory, logs anew. A tracker that failed
    leaves the stage unrecorded (the next run tries again) and the evaluation as it is."""
    from training import trackers

    try:
        tracker = trackers.resolve(report_to)
    except HarnessError as exc:  # a tracker is optional here: the evaluation is done already
        log.warning("%s; the evaluation summary of %s was not logged", exc, label)
        return
    if tracker == "none":
        return
    scalars = eval_scalars(RunData(run.root), label)
    step = trained_step(run, label)
    stage, inputs_hash = f"track:{label}", stable_hash({"tracker": tracker, "step": step, "scalars": scalars})
    if run.is_done(stage, inputs_hash):
        log.info("stage %s: up to date, skipped", stage)
        return
    if trackers.log_evaluation(run.root, label, tracker, scalars, step):
        # Deleting tensorboard/<label>/ asks for the summary again; the other trackers keep theirs elsewhere.
        run.mark_done(stage, inputs_hash, [layout.tensorboard(label)] if tracker == "tensorboard" else [])
