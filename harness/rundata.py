"""Read-only view of a run directory's evaluation and training artefacts.

This is the one reader of a run directory (its paths come from `harness.layout`) and the one place
that knows which metric is each task's headline, so stats, drift, report and gate all score a
benchmark the same way:

    <run>/config.json
    <run>/eval/<label>/results.json, samples_<task>.jsonl   label = base | <method> | <method>@seed<k>
    <run>/train/<label>/log.jsonl, summary.json

A file a stage recorded in the manifest is read only while it still hashes to the record (an edited
or truncated one stops the reader with a line naming it), and an evaluated model whose training config
differs from the run's is refused: no report shows numbers the run did not produce as configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from harness import layout
from harness.errors import HarnessError
from harness.io import read_json, read_jsonl
from harness.registry import BENCHMARKS
from harness.run import check_recorded

BASE = "base"


class _TaskView(Mapping):
    """task -> `fact(benchmark)` for the registered benchmarks `keep` selects, in registry order.

    Read on every use, never copied at import: a benchmark registered later in the process
    (`harness.benchmarks.register`) is seen by every reader of a run, including modules that
    imported these names before it was registered."""

    def __init__(self, fact: Callable[[Any], Any], keep: Callable[[Any], bool] = lambda bench: True):
        self._fact, self._keep = fact, keep

    def __getitem__(self, task: str) -> Any:
        bench = BENCHMARKS.get(task)
        if bench is None or not self._keep(bench):
            raise KeyError(task)
        return self._fact(bench)

    def __iter__(self) -> Iterator[str]:
        return (name for name, bench in BENCHMARKS.items() if self._keep(bench))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _TaskSet(AbstractSet):
    """The registered tasks `keep` selects, read on every use (see _TaskView)."""

    def __init__(self, keep: Callable[[Any], bool]):
        self._view = _TaskView(lambda bench: True, keep)

    def __contains__(self, task: object) -> bool:
        return task in self._view

    def __iter__(self) -> Iterator[str]:
        return iter(self._view)

    def __len__(self) -> int:
        return len(self._view)

    @classmethod
    def _from_iterable(cls, names) -> frozenset[str]:  # what `&`, `|` and `-` return
        return frozenset(names)


# Benchmark facts come from the registry; these are views of it for the readers of a run.
HEADLINE_METRIC: Mapping[str, str] = _TaskView(lambda b: b.metric)
# Reported as their own table columns next to the headline.
EXTRA_METRICS: Mapping[str, tuple[str, ...]] = _TaskView(
    lambda b: b.extra_metrics, lambda b: bool(b.extra_metrics)
)
MATH_TASKS: AbstractSet[str] = _TaskSet(lambda b: not b.general)
# Scored by log-likelihood over fixed options: no generated text, so no format drift to measure.
LOGLIKELIHOOD_TASKS: AbstractSet[str] = _TaskSet(lambda b: b.output_type == "multiple_choice")

# What to do about a recorded file that no longer matches its record.
REGENERATE = "run the same harness compare again to regenerate it (or remove it and run again)"
# Training settings that do not change the trained model.
_NOT_TRAINING = ("report_to",)

_SEED_LABEL = re.compile(r"^(?P<method>.+)@seed(?P<seed>\d+)$")


def is_general(task: str) -> bool:
    """Benchmarks outside the training domain, where a drop means forgetting (a task the registry
    does not know, e.g. from an older run, counts as general: it is not what was trained)."""
    return BENCHMARKS[task].general if task in BENCHMARKS else True


def method_of(label: str) -> str:
    match = _SEED_LABEL.match(label)
    return match["method"] if match else label


def headline_metric(task: str, available: list[str] | None = None) -> str:
    """The task's headline metric; unknown tasks fall back to acc / exact_match / the first one."""
    if task in HEADLINE_METRIC:
        return HEADLINE_METRIC[task]
    available = sorted(available or [])
    for candidate in ("acc", "exact_match"):
        if candidate in available:
            return candidate
    if available:
        return available[0]
    raise HarnessError(f"task {task!r}: results.json has no metric")


def metric_label(task: str, metric: str) -> str:
    """Column name: the task alone for its headline metric, else 'task (metric)'."""
    return task if metric == HEADLINE_METRIC.get(task) else f"{task} ({metric})"


def item_units(record: dict, metric: str) -> dict[str, float]:
    """A record's scores for `metric`, keyed by item_id.

    List-valued metrics (IFEval's per-instruction verdicts) expand to one unit per element,
    keyed 'item_id#k', so their mean is the micro average lm-eval reports.
    """
    value = (record.get("metrics") or {}).get(metric)
    if value is None:
        return {}
    item_id = str(record.get("item_id", record.get("doc_id")))
    if isinstance(value, list):
        return {f"{item_id}#{k}": float(v) for k, v in enumerate(value)}
    return {item_id: float(value)}


def unit_cluster(unit: str) -> str:
    """The item a scored unit belongs to: an expanded unit 'item_id#k' (see item_units) belongs to
    its item, which is the independent unit of any test (IFEval's instructions share a prompt)."""
    item, sep, k = unit.rpartition("#")
    return item if sep and k.isdigit() else unit


def _mean_over_duplicates(pairs: list[tuple[str, float]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for key, value in pairs:
        sums.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in sums.items()}


class RunData:
    """Lazy, cached access to one run directory; raises HarnessError on unusable input."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HarnessError(f"{self.root}: run directory not found")
        if not self.labels:
            raise HarnessError(f"{self.root}: no evaluated models (expected eval/<label>/results.json)")
        self._samples: dict[tuple[str, str], list[dict]] = {}
        self._item_scores: dict[tuple[str, str, str], Mapping[str, float]] = {}
        for label in self.labels:
            self._check_trained_as_configured(label)

    @property
    def run_id(self) -> str:
        return self.root.resolve().name

    @cached_property
    def config(self) -> dict[str, Any]:
        path = self.root / layout.CONFIG
        if not path.exists():
            return {}
        config = read_json(path)
        if not isinstance(config, dict):
            raise HarnessError(f"{path}: expected a JSON object")
        return config

    def _read(self, relpath: str) -> Path:
        """The path of a run file, after checking it against the stage that recorded it (a recorded
        file that is missing, edited or truncated raises)."""
        check_recorded(self.root, relpath, REGENERATE)
        return self.root / relpath

    def _check_trained_as_configured(self, label: str) -> None:
        """Refuse a model trained under other settings than the run's config (a run directory reused
        with another config would otherwise report it beside the others: budgets no longer matched)."""
        wanted, summary = self.config.get("train"), self.train_summary(label)
        trained = (summary or {}).get("config")
        if not isinstance(wanted, dict) or not isinstance(trained, dict):
            return  # not a compare run, or a summary that does not record its config
        differs = [
            f"train.{key}={trained[key]!r} (config.json: {wanted[key]!r})"
            for key in sorted(wanted)
            if key not in _NOT_TRAINING and key in trained and trained[key] != wanted[key]
        ]
        if "model" in self.config and trained.get("model") != self.config["model"]:
            differs.append(f"model={trained.get('model')!r} (config.json: {self.config['model']!r})")
        if differs:
            raise HarnessError(
                f"{self.root / layout.train_summary(label)}: {label} was trained with {', '.join(differs)}; "
                "a report would compare it with models of another budget: run harness compare into a new -o"
            )

    @cached_property
    def planned_groups(self) -> list[str]:
        """The groups a compare run's config asks for (base and its methods), evaluated or not yet."""
        methods = self.config.get("methods")
        return [BASE, *map(str, methods)] if isinstance(methods, list) else []

    @property
    def git_revision(self) -> str:
        return str(self.config.get("git_revision") or "unknown")

    @cached_property
    def labels(self) -> list[str]:
        """Evaluated models: base first, then methods in config order, seeds in numeric order."""
        eval_dir = self.root / layout.EVAL
        found = (
            [p.parent.name for p in eval_dir.glob(f"*/{layout.RESULTS_NAME}")] if eval_dir.is_dir() else []
        )
        return sorted(found, key=self.label_key)

    def label_key(self, label: str) -> tuple:
        method = method_of(label)
        order = [BASE, *[str(m) for m in self.config.get("methods") or []]]
        rank = order.index(method) if method in order else len(order)
        match = _SEED_LABEL.match(label)
        return (rank, method, int(match["seed"]) if match else -1)

    @cached_property
    def groups(self) -> dict[str, list[str]]:
        """Method name -> its labels (one per seed); base is its own group."""
        groups: dict[str, list[str]] = {}
        for label in self.labels:
            groups.setdefault(method_of(label), []).append(label)
        return groups

    def results(self, label: str) -> dict[str, Any]:
        return self._results[label]

    @cached_property
    def _results(self) -> dict[str, dict[str, Any]]:
        loaded = {}
        for label in self.labels:
            path = self._read(layout.results(label))
            data = read_json(path)
            if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
                raise HarnessError(f"{path}: missing the 'results' object")
            loaded[label] = data
        return loaded

    def tasks_of(self, label: str) -> list[str]:
        return sorted(self.results(label)["results"], key=task_sort_key)

    @cached_property
    def tasks(self) -> list[str]:
        return sorted({t for label in self.labels for t in self.tasks_of(label)}, key=task_sort_key)

    def metrics_of(self, label: str, task: str) -> list[str]:
        """Metric names in results.json for a task (filters and stderr entries stripped)."""
        entry = self.results(label)["results"].get(task) or {}
        names = {key.split(",")[0] for key in entry if isinstance(entry[key], (int, float))}
        return sorted(n for n in names if not n.endswith("_stderr") and n != "alias")

    def headline(self, task: str) -> str:
        available = sorted({m for label in self.labels for m in self.metrics_of(label, task)})
        return headline_metric(task, available)

    def columns(self) -> list[tuple[str, str]]:
        """(task, metric) pairs in table order: each task's headline, then its extra metrics."""
        cols = []
        for task in self.tasks:
            cols.append((task, self.headline(task)))
            cols.extend((task, extra) for extra in EXTRA_METRICS.get(task, ()))
        return cols

    def aggregate(self, label: str, task: str, metric: str) -> tuple[float, float | None] | None:
        """(value, stderr) from results.json, preferring the 'none' filter."""
        entry = self.results(label)["results"].get(task)
        if not isinstance(entry, dict):
            return None
        keys = sorted(k for k in entry if k.split(",")[0] == metric)
        keys.sort(key=lambda k: k != f"{metric},none")
        if not keys or not isinstance(entry[keys[0]], (int, float)):
            return None
        stderr = entry.get(keys[0].replace(metric, f"{metric}_stderr", 1))
        return float(entry[keys[0]]), float(stderr) if isinstance(stderr, (int, float)) else None

    def version(self, label: str, task: str) -> str:
        return str((self.results(label).get("versions") or {}).get(task, "unknown"))

    def fingerprint(self, label: str) -> str:
        return str((self.results(label).get("model") or {}).get("fingerprint", "unknown"))

    def samples(self, label: str, task: str) -> list[dict]:
        key = (label, task)
        if key not in self._samples:
            path = self._read(layout.samples(label, task))
            self._samples[key] = read_jsonl(path) if path.exists() else []
        return self._samples[key]

    def item_scores(self, label: str, task: str, metric: str) -> Mapping[str, float]:
        """Per-item scores (empty when the run has no samples carrying that metric).

        Computed once per (label, task, metric): the main table, plots, drift, findings and gate all
        read them, and a read-only view keeps one reader from changing another's numbers."""
        key = (label, task, metric)
        if key not in self._item_scores:
            pairs = [pair for rec in self.samples(label, task) for pair in item_units(rec, metric).items()]
            self._item_scores[key] = MappingProxyType(_mean_over_duplicates(pairs))
        return self._item_scores[key]

    def group_item_scores(self, group: str, task: str, metric: str) -> dict[str, float]:
        """Per-item scores averaged over a method's seeds, on items every seed evaluated."""
        per_label = [self.item_scores(label, task, metric) for label in self.groups[group]]
        shared = set.intersection(*(set(s) for s in per_label)) if per_label else set()
        return {item: float(np.mean([s[item] for s in per_label])) for item in sorted(shared)}

    def score(self, label: str, task: str, metric: str) -> float | None:
        """Score in [0, 1]: the mean of per-item scores, or results.json when there are none."""
        items = self.item_scores(label, task, metric)
        if items:
            return float(np.mean(list(items.values())))
        aggregate = self.aggregate(label, task, metric)
        return aggregate[0] if aggregate else None

    @cached_property
    def train_labels(self) -> list[str]:
        train_dir = self.root / layout.TRAIN
        if not train_dir.is_dir():
            return []
        return sorted((p.name for p in train_dir.iterdir() if p.is_dir()), key=self.label_key)

    def train_log(self, label: str) -> list[dict]:
        path = self._read(layout.train_log(label))
        return read_jsonl(path) if path.exists() else []

    def train_summary(self, label: str) -> dict[str, Any] | None:
        path = self._read(layout.train_summary(label))
        if not path.exists():
            return None
        summary = read_json(path)
        if not isinstance(summary, dict):
            raise HarnessError(f"{path}: expected a JSON object")
        return summary


def task_sort_key(task: str) -> tuple[int, str]:
    """Registry order ("all"'s), then tasks the registry does not know, by name."""
    order = list(BENCHMARKS)
    return (order.index(task) if task in order else len(order), task)


def item_id(record: dict) -> str:
    """A sample record's item id (records written before item ids existed have only a doc_id)."""
    return str(record.get("item_id", record.get("doc_id")))


def natural_key(item: str) -> list[tuple[int, int, str]]:
    """Item ids in reading order: digit runs compare as numbers ("2" before "10")."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", item)]
