"""Every path under a run directory (`runs/<run-id>/`), in one place: each writer and reader asks here.

    config.json, manifest.json                    the resolved config; each stage's inputs hash and outputs' hashes
    run.lock                                      held (flock) by the process working in the run directory
    problems/{train,val}.jsonl                    the selected problems (val: never a benchmark test set)
    probe/{attempts,val_attempts}.jsonl           the student's first answers y'
    teach/{annotations,val_annotations}.jsonl     critiques c and refined answers ŷ (+ .meta.json)
    data/<method>.jsonl (+ .meta.json)            one training set per method
    train/<label>/checkpoint/, log.jsonl, summary.json, steps/step-<k>/   label = method[@seed<k>]
    eval/<label>/results.json, samples_<task>.jsonl (+ .parquet), timing_<task>.jsonl, table.md,
                                                  shards/shard-K-of-N/ (the same files per shard)
    analysis/uncertainty.json, uncertainty.csv, uncertainty/<label>.jsonl
    tensorboard/<label>/                          with train.report_to = tensorboard (+ *.eval: evaluation summary)

Paths are relative to the run directory (what the manifest records); `RunDir.path(...)` makes them real.
"""

from __future__ import annotations

CONFIG = "config.json"
MANIFEST = "manifest.json"
LOCK = "run.lock"

TRAIN_PROBLEMS = "problems/train.jsonl"
VAL_PROBLEMS = "problems/val.jsonl"
ATTEMPTS = "probe/attempts.jsonl"
VAL_ATTEMPTS = "probe/val_attempts.jsonl"
ANNOTATIONS = "teach/annotations.jsonl"
VAL_ANNOTATIONS = "teach/val_annotations.jsonl"

TRAIN = "train"
EVAL = "eval"

UNCERTAINTY = "analysis/uncertainty.json"
UNCERTAINTY_CSV = "analysis/uncertainty.csv"


DATA = "data"
META_SUFFIX = ".meta.json"  # a dataset's (or annotations') metadata, beside its .jsonl


def dataset(method: str) -> str:
    return f"{DATA}/{method}.jsonl"


def meta_name(name: str) -> str:
    """The metadata file beside a JSONL file of the run (data/<method>.jsonl, teach/*.jsonl)."""
    return name.removesuffix(".jsonl") + META_SUFFIX


def train_dir(label: str) -> str:
    return f"{TRAIN}/{label}"


CHECKPOINT_NAME = "checkpoint"  # inside train/<label>/: the model the run evaluates
STEPS = "steps"  # inside train/<label>/: candidate checkpoints, removed once one is chosen


def checkpoint(label: str) -> str:
    return f"{TRAIN}/{label}/{CHECKPOINT_NAME}"


def step_name(step: int) -> str:
    return f"step-{step}"


SUMMARY_NAME = "summary.json"


def train_log(label: str) -> str:
    return f"{TRAIN}/{label}/log.jsonl"


def train_summary(label: str) -> str:
    return f"{TRAIN}/{label}/{SUMMARY_NAME}"


def eval_dir(label: str) -> str:
    return f"{EVAL}/{label}"


# Inside an evaluation directory (eval/<label>/, or one shard of it):
RESULTS_NAME = "results.json"  # written last: a shard without it did not finish
TABLE_NAME = "table.md"
SHARDS = "shards"
SHARD_PATTERN = "shard-*-of-*"


def results(label: str) -> str:
    return f"{EVAL}/{label}/{RESULTS_NAME}"


def eval_table(label: str) -> str:
    return f"{EVAL}/{label}/{TABLE_NAME}"


def shard_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def shard_dir(label: str, name: str) -> str:
    """One shard's evaluation directory (`harness eval --shard K/N`); `name` is `shard_name(K, N)`."""
    return f"{EVAL}/{label}/{SHARDS}/{name}"


def timing_name(task: str) -> str:
    """Per-item generation timings, apart from the records so those stay byte-identical across runs."""
    return f"timing_{task}.jsonl"


def samples(label: str, task: str) -> str:
    return f"{EVAL}/{label}/samples_{task}.jsonl"


def samples_name(task: str) -> str:
    """A task's sample file inside an evaluation (or shard) directory."""
    return f"samples_{task}.jsonl"


def samples_parquet(label: str, task: str) -> str:
    return f"{EVAL}/{label}/{samples_parquet_name(task)}"


def samples_parquet_name(task: str) -> str:
    """The same records as a typed table (harness.frames), beside the JSONL where pyarrow is installed."""
    return f"samples_{task}.parquet"


def uncertainty_scores(label: str) -> str:
    return f"analysis/uncertainty/{label}.jsonl"


def tensorboard(label: str) -> str:
    return f"tensorboard/{label}"


# A model's evaluation summary: events.out.tfevents.<...>.eval in tensorboard/<label>/, beside the
# training's event files (TensorBoard names the rest of the file).
TENSORBOARD_EVAL_SUFFIX = ".eval"
