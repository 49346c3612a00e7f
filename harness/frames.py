"""Run directories as pandas dataframes: every item and every benchmark's summary.

    import harness
    items = harness.items_df(["runs/compare-ci-a", "runs/compare-ci-b"])
    summary = harness.summary_df("runs/compare-ci-a")

The comparisons and findings test a study's hypotheses, so their frames live with the study's
application (harness_app/frames.py). Columns and dtypes are fixed (`item_columns()`,
SUMMARY_COLUMNS): a run that has not evaluated anything yet gives an empty frame with the same
columns, so notebook code written against one run works on the next. The items have a boolean column
per drift measure a study added (`harness.drift.add_measure`, before the frame is made). Redacted
benchmarks (GPQA) give ids, letters and verdicts only: their question, option and response texts
never reach a frame. pandas is imported inside the functions, so `import harness` stays cheap.
docs/analysis-api.md has worked examples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import layout
from harness.errors import HarnessError

if TYPE_CHECKING:
    import pandas as pd

    from harness.rundata import RunData

# One row per (run, model, benchmark, item). Scores are fractions in [0, 1] (the headline metric).
ITEM_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "label": "string",  # base | <method> | <method>@seed<k>
    "method": "string",
    "seed": "Int64",  # the training seed; <NA> for base
    "benchmark": "string",
    "item_id": "string",
    "metric": "string",  # the headline metric `score` is
    "score": "Float64",
    "verdict": "boolean",  # passed: the score as pass/fail (continuous scores at 0.5)
    "extracted": "string",  # the checker's extracted answer (JSON for non-text answers)
    "gold": "string",
    # here: a boolean column per drift measure a study added (item_columns); <NA> without response text
    "no_answer": "boolean",
    "thinking": "string",  # none | closed | unclosed (generative tasks)
    "prompt_tokens": "Int64",
    "completion_tokens": "Int64",
    "seconds": "Float64",
    "prompt": "string",  # <NA> for redacted benchmarks
    "response": "string",  # <NA> for redacted benchmarks
}


def item_columns() -> dict[str, str]:
    """ITEM_COLUMNS with the boolean column of each drift measure a study added, after `gold`."""
    from harness.drift import added_measures

    columns = list(ITEM_COLUMNS.items())
    at = [name for name, _ in columns].index("gold") + 1
    added = [(m.column, "boolean") for m in added_measures()]
    return dict(columns[:at] + added + columns[at:])


# One row per (run, model, benchmark, metric): the headline and each extra metric of the main table.
SUMMARY_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "label": "string",
    "method": "string",
    "seed": "Int64",
    "benchmark": "string",
    "metric": "string",
    "n": "Int64",  # scored units (IFEval's instruction-level metric: instructions)
    "score": "Float64",
    "ci_low": "Float64",
    "ci_high": "Float64",
    "interval": "string",  # clopper-pearson | wilson | bootstrap | <NA> (aggregate only)
}

CONFIG_PREFIX = "config."
# Recorded beside the config in config.json, not part of it (provenance is a machine description).
_NOT_CONFIG = ("run_id", "provenance")


# ------------------------------------------------------------------------------ runs -----------


def _paths(runs: Any) -> list[Any]:
    if isinstance(runs, (str, Path)) or hasattr(runs, "root"):
        return [runs]
    return list(runs)


def _open(run: Any) -> tuple[Path, RunData | None]:
    """(root, reader); the reader is None for a run that has evaluated no model yet."""
    from harness.rundata import RunData

    if isinstance(run, RunData):
        return run.root, run
    root = Path(run)
    if not root.is_dir():
        raise HarnessError(f"{root}: run directory not found")
    if not (root / layout.CONFIG).is_file() and not (root / layout.EVAL).is_dir():
        raise HarnessError(f"{root}: not a run directory (no {layout.CONFIG} and no {layout.EVAL}/)")
    if not any((root / layout.EVAL).glob(f"*/{Path(layout.results('x')).name}")):
        return root, None
    return root, RunData(root)


def open_runs(runs: Any) -> Iterator[tuple[Path, RunData | None]]:
    seen: set[Path] = set()
    for run in _paths(runs):
        root, data = _open(run)
        if root.resolve() in seen:
            raise HarnessError(f"{root}: the same run given twice")
        seen.add(root.resolve())
        yield root, data


def _seed(run: RunData | None, label: str) -> int | None:
    from harness.rundata import BASE, method_of

    if method_of(label) == BASE:
        return None
    if "@seed" in label:
        return int(label.rsplit("@seed", 1)[1])
    seeds = (run.config.get("seeds") if run else None) or []
    return int(seeds[0]) if len(seeds) == 1 else None


# ------------------------------------------------------------------------------ typed frames ---


def typed_frame(
    rows: list[dict], columns: dict[str, str], extra: dict[str, str] | None = None
) -> pd.DataFrame:
    import pandas as pd

    dtypes = {**columns, **(extra or {})}
    data = {name: pd.array([row.get(name) for row in rows], dtype=dtype) for name, dtype in dtypes.items()}
    return pd.DataFrame(data, columns=list(dtypes))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


# ------------------------------------------------------------------------------ config columns -


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_values(config: dict) -> dict[str, Any]:
    """A run's config as `config.<dotted key>` -> scalar (lists and maps as JSON text)."""
    tree = {k: v for k, v in config.items() if k not in _NOT_CONFIG}
    return {
        CONFIG_PREFIX + key: value
        if value is None or isinstance(value, (bool, int, float, str))
        else _text(value)
        for key, value in _flatten(tree).items()
    }


def _config_dtype(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "Float64"
    return "string"


def _config_columns(configs: list[dict[str, Any]]) -> dict[str, str]:
    """Each config key's dtype from its values across the runs (mixed kinds become text)."""
    keys = sorted({k for c in configs for k in c})
    dtypes = {}
    for key in keys:
        values = [c.get(key) for c in configs]
        dtype = _config_dtype(values)
        dtypes[key] = dtype
        if dtype == "string":
            for c in configs:
                if key in c and c[key] is not None and not isinstance(c[key], str):
                    c[key] = _text(c[key])
    return dtypes


def _run_config(root: Path, run: RunData | None) -> dict[str, Any]:
    if run is not None:
        return config_values(run.config)
    from harness.io import read_json

    path = root / layout.CONFIG
    config = read_json(path) if path.is_file() else {}
    if not isinstance(config, dict):
        raise HarnessError(f"{path}: expected a JSON object")
    return config_values(config)


# ------------------------------------------------------------------------------ items ----------


def record_row(task: str, record: dict, metric: str) -> dict[str, Any]:
    """One sample record as an items row (no run columns); redacted benchmarks lose their texts."""
    from harness import drift
    from harness.registry import BENCHMARKS
    from harness.rundata import item_id

    redacted = task in BENCHMARKS and BENCHMARKS[task].redact
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, list):
        score = float(sum(map(float, value)) / len(value)) if value else None
    else:
        score = _number(value)
    response = record.get("response") if isinstance(record.get("response"), str) else None
    metrics = record.get("metrics") or {}
    no_answer = metrics.get("no_answer") == 1 or (
        drift.has_final_answer(task, response, record.get("extracted", drift.NO_EXTRACTION)) is False
    )
    row = {
        "benchmark": task,
        "item_id": item_id(record),
        "metric": metric,
        "score": score,
        "verdict": None if score is None else score >= 0.5,
        "extracted": _text(record.get("extracted")),
        "gold": _text(record.get("gold")),
        **{
            m.column: None if response is None or redacted else m.detect(response)
            for m in drift.added_measures()
        },
        "no_answer": no_answer,
        "thinking": _text(record.get("thinking")),
        "prompt_tokens": _count(record.get("prompt_tokens")),
        "completion_tokens": _count(record.get("completion_tokens")),
        "seconds": _number(record.get("seconds")),
        "prompt": None if redacted else _text(record.get("prompt")),
        "response": None if redacted else response,
    }
    if redacted:
        # Letters only: a value longer than an option letter could be text from the item.
        row["gold"] = row["gold"] if _is_letter(row["gold"]) else None
        row["extracted"] = row["extracted"] if _is_letter(row["extracted"]) else None
    return row


def _is_letter(value: str | None) -> bool:
    return value is not None and len(value) == 1 and value.isalpha()


def _item_rows(run: RunData) -> Iterator[dict[str, Any]]:
    from harness.rundata import method_of, natural_key

    for label in run.labels:
        for task in run.tasks_of(label):
            metric = run.headline(task)
            rows = [record_row(task, rec, metric) for rec in run.samples(label, task)]
            for row in sorted(rows, key=lambda r: natural_key(r["item_id"])):
                yield {
                    "run_id": run.run_id,
                    "label": label,
                    "method": method_of(label),
                    "seed": _seed(run, label),
                    **row,
                }


def items_df(runs: Any) -> pd.DataFrame:
    """Every item of every model of one or several runs, one row each, with each run's config as
    `config.<key>` columns (the keys of all the runs given; <NA> where a run lacks one)."""
    opened = [(run, _run_config(root, run)) for root, run in open_runs(runs)]
    config_dtypes = _config_columns([config for _, config in opened])
    rows = [{**row, **config} for run, config in opened if run is not None for row in _item_rows(run)]
    return typed_frame(rows, item_columns(), config_dtypes)


# ------------------------------------------------------------------------------ summaries ------


def _summary_rows(run: RunData) -> Iterator[dict[str, Any]]:
    from harness.rundata import method_of
    from harness.stats import score_interval

    for label in run.labels:
        for task, metric in run.columns():
            if task not in run.tasks_of(label):
                continue
            row = {
                "run_id": run.run_id,
                "label": label,
                "method": method_of(label),
                "seed": _seed(run, label),
                "benchmark": task,
                "metric": metric,
            }
            scores = list(run.item_scores(label, task, metric).values())
            if scores:
                interval = score_interval(scores)
                row |= {
                    "n": interval.n,
                    "score": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "interval": interval.method,
                }
            elif (aggregate := run.aggregate(label, task, metric)) is not None:
                row["score"] = aggregate[0]
            else:
                continue
            yield row


def summary_df(runs: Any) -> pd.DataFrame:
    """Each model's score per benchmark and metric with its 95 % interval (harness.stats.score_interval:
    Clopper-Pearson for 0/1 verdicts, bootstrap for continuous scores), as fractions in [0, 1]."""
    rows = [row for _, run in open_runs(runs) if run is not None for row in _summary_rows(run)]
    return typed_frame(rows, SUMMARY_COLUMNS)


# ------------------------------------------------------------------------------ parquet --------


def samples_frame(task: str, records: Iterable[dict], metric: str) -> pd.DataFrame:
    """One evaluation's records of `task` as an items frame without run columns, plus every scalar
    metric as `metrics.<name>` (Float64): what `samples_<task>.parquet` holds."""
    records = list(records)
    rows = [record_row(task, rec, metric) for rec in records]
    names = sorted(
        {
            name
            for rec in records
            for name, value in (rec.get("metrics") or {}).items()
            if _number(value) is not None or value is None
        }
    )
    for row, rec in zip(rows, records):
        for name in names:
            row[f"metrics.{name}"] = _number((rec.get("metrics") or {}).get(name))
    run_columns = ("run_id", "label", "method", "seed")
    columns = {k: v for k, v in item_columns().items() if k not in run_columns}
    return typed_frame(rows, columns, {f"metrics.{name}": "Float64" for name in names})


def write_samples_parquet(directory: str | Path, task: str, records: list[dict]) -> Path | None:
    """`samples_<task>.parquet` beside `samples_<task>.jsonl` in an evaluation directory, written
    atomically; None (nothing written) where pyarrow is not installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    from harness.io import atomic_write_bytes
    from harness.rundata import headline_metric

    available = sorted({k for rec in records for k in (rec.get("metrics") or {})})
    frame = samples_frame(task, records, headline_metric(task, available) if available else "")
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return atomic_write_bytes(Path(directory) / layout.samples_parquet_name(task), buffer.getvalue())
