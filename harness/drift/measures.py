"""Per-item drift measures and their levels per task and model.

The library's own: parseable final answers and response length. A benchmark brings its own
(`Benchmark.drift_extras`, read from the registry on use, so one registered later is seen). A study
adds per-item measures of its own with `add_measure` (a `ResponseMeasure`: a trait of one response
text, reported as the share of responses that show it); from then on every drift table, comparison,
finding, plan, tracker summary and items frame in the process carries it, in the order added, after
`parseable`; the benchmarks' measures come after `length`, in registry order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.benchmarks import BENCHMARKS, DriftExtra
from harness.drift.detectors import NO_EXTRACTION, _answer_detector, has_final_answer
from harness.errors import HarnessError
from harness.rundata import RunData

_GENERIC_NAMES = {"parseable": "parseable final answers", "length": "mean response length"}


@dataclass(frozen=True)
class ResponseMeasure:
    """A trait of one response a study measures: per item 1.0 or 0.0, per model the share."""

    name: str  # the quantity: comparisons, hypotheses' tests, tracker tags, the drift CSV's `<name>_pct`
    label: str  # in prose and findings ("<label> on <task>") and the measures plot ("<label> (%)")
    heading: str  # the drift table's column, "<heading> %"
    column: str  # the items frame's boolean column (harness.items_df, samples_<task>.parquet)
    detect: Callable[[str], bool]  # on the response text
    rise_is_better: bool = False  # False: a significant change reads "higher" / "lower"


_ADDED: dict[str, ResponseMeasure] = {}


def add_measure(measure: ResponseMeasure) -> ResponseMeasure:
    """Add a study's measure to every drift analysis of this process (importing the study's module
    twice adds it once); a name the library or another measure already uses is refused."""
    if _ADDED.get(measure.name) == measure:
        return measure
    if measure.name in _ADDED or measure.name in _GENERIC_NAMES or measure.name in benchmark_extras():
        raise HarnessError(f"drift measure {measure.name!r} exists already; give the new one another name")
    _ADDED[measure.name] = measure
    return measure


def added_measures() -> tuple[ResponseMeasure, ...]:
    """The measures studies added, in the order added."""
    return tuple(_ADDED.values())


def benchmark_extras() -> dict[str, DriftExtra]:
    """The registered benchmarks' own measures, by name, in registry order. Two benchmarks may share
    a measure (the same `DriftExtra`); a name that means two things is refused."""
    extras: dict[str, DriftExtra] = {}
    for bench in BENCHMARKS.values():
        for extra in bench.drift_extras:
            if extras.get(extra.name, extra) != extra or extra.name in _ADDED or extra.name in _GENERIC_NAMES:
                raise HarnessError(
                    f"benchmark {bench.name!r}: drift measure {extra.name!r} exists already; "
                    "give the benchmark's measure another name"
                )
            extras[extra.name] = extra
    return extras


def measure_names() -> tuple[str, ...]:
    """Every drift measure in this process, in the order tables, comparisons and trackers list them."""
    return ("parseable", *_ADDED, "length", *benchmark_extras())


def measure_label(name: str) -> str:
    """A measure's name in prose ("parseable final answers")."""
    if name in _ADDED:
        return _ADDED[name].label
    extras = benchmark_extras()
    label = extras[name].label if name in extras else _GENERIC_NAMES.get(name)
    if label is None:
        raise HarnessError(f"unknown drift measure {name!r}; known: {', '.join(measure_names())}")
    return label


def rise_is_better(quantity: str) -> bool:
    """Whether a rise in a score or drift measure is an improvement; False for length and for the
    added and benchmark measures that say so (their significant changes read "higher" / "lower")."""
    if quantity in _ADDED:
        return _ADDED[quantity].rise_is_better
    extras = benchmark_extras()
    if quantity in extras:
        return extras[quantity].rise_is_better
    return quantity != "length"


def applicable_measures(task: str) -> tuple[str, ...]:
    """The drift measures a generative task's records carry: the one rule that both the report's
    comparisons and the planner's family size (harness/findings.py) follow."""
    bench = BENCHMARKS.get(task)
    own = {e.name for e in bench.drift_extras} if bench is not None else set()
    skip = {m for m in benchmark_extras() if m not in own}
    if _answer_detector(task) is None:
        skip.add("parseable")
    return tuple(m for m in measure_names() if m not in skip)


def response_length(record: dict) -> tuple[float, str] | None:
    """Completion length in tokens, or in characters when the record has no token count."""
    tokens = record.get("completion_tokens")
    if isinstance(tokens, (int, float)):
        return float(tokens), "tokens"
    if isinstance(record.get("response"), str):
        return float(len(record["response"])), "chars"
    return None


def _item_id(record: dict) -> str:
    return str(record.get("item_id", record.get("doc_id")))


@dataclass(frozen=True)
class Measures:
    values: dict[str, dict[str, float]]  # measure -> item_id -> value
    length_unit: str  # "tokens", "chars", or "" when absent or mixed


def item_measures(records: list[dict], task: str) -> Measures:
    """Per-item values of every drift measure that applies to this task's records."""
    values: dict[str, dict[str, float]] = {m: {} for m in measure_names()}
    bench = BENCHMARKS.get(task)
    own = {e.name for e in bench.drift_extras} if bench is not None else set()
    added = added_measures()
    units = set()
    for rec in records:
        item = _item_id(rec)
        response = rec.get("response") if isinstance(rec.get("response"), str) else None
        parseable = has_final_answer(task, response, rec.get("extracted", NO_EXTRACTION))
        if parseable is not None:
            values["parseable"][item] = float(parseable)
        if response is not None:
            for measure in added:
                values[measure.name][item] = float(measure.detect(response))
        length = response_length(rec)
        if length is not None:
            values["length"][item] = length[0]
            units.add(length[1])
        if bench is not None:
            for name, value in bench.drift_measures(rec).items():
                if name not in own:
                    raise HarnessError(
                        f"benchmark {task!r} measures {name!r}, which its drift_extras do not name"
                    )
                values[name][item] = value
    return _drop_mixed_lengths(values, units)


def _drop_mixed_lengths(values: dict[str, dict[str, float]], units: set[str]) -> Measures:
    if len(units) > 1:
        # Tokens and characters cannot be averaged together.
        return Measures({**values, "length": {}}, "")
    return Measures(values, next(iter(units), ""))


def group_measures(run: RunData, group: str, task: str) -> Measures:
    """Drift measures for a method, averaged per item over its seeds."""
    per_label = [item_measures(run.samples(label, task), task) for label in run.groups[group]]
    merged = {}
    for measure in measure_names():
        maps = [m.values[measure] for m in per_label]
        shared = set.intersection(*(set(m) for m in maps))
        merged[measure] = {i: float(np.mean([m[i] for m in maps])) for i in sorted(shared)}
    return _drop_mixed_lengths(merged, {m.length_unit for m in per_label if m.length_unit})


def is_generative(run: RunData, task: str) -> bool:
    bench = BENCHMARKS.get(task)
    if bench is not None and not bench.generative:
        return False
    return any(
        rec.get("response") or rec.get("completion_tokens") or rec.get("extracted") is not None
        for label in run.labels
        for rec in run.samples(label, task)
    )


@dataclass(frozen=True)
class DriftRow:
    task: str
    model: str
    n: int
    parseable: float | None  # fraction of items
    mean_length: float | None
    length_unit: str
    # Share of responses whose thinking opened and never closed (scored no_answer; eval.reasoning_end).
    # Descriptive only, not a compared measure: for a model that does not think it is 0 everywhere.
    unclosed_thinking: float | None = None
    added: dict[str, float | None] = field(default_factory=dict)  # each added measure's share, by name
    extras: dict[str, float | None] = field(default_factory=dict)  # each benchmark measure's, by name


def unclosed_share(records: list[dict]) -> float | None:
    """Share of records whose `thinking` field says unclosed; None when no record carries the field."""
    marked = [r["thinking"] for r in records if "thinking" in r]
    return sum(t == "unclosed" for t in marked) / len(marked) if marked else None


def _mean(values: dict[str, float]) -> float | None:
    return float(np.mean(list(values.values()))) if values else None


def format_drift(run: RunData) -> list[DriftRow]:
    """One row per generative task and model (base first), with each drift measure's level."""
    rows = []
    for task in run.tasks:
        if not is_generative(run, task):
            continue
        for group in run.groups:
            m = group_measures(run, group, task)
            records = [r for label in run.groups[group] for r in run.samples(label, task)]
            n = len({_item_id(r) for r in records})
            rows.append(
                DriftRow(
                    task,
                    group,
                    n,
                    _mean(m.values["parseable"]),
                    _mean(m.values["length"]),
                    m.length_unit,
                    unclosed_share(records),
                    {a.name: _mean(m.values[a.name]) for a in added_measures()},
                    {name: _mean(m.values[name]) for name in benchmark_extras()},
                )
            )
    return rows
