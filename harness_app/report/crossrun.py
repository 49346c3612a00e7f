"""One report over several runs: `cgd@reveal=none` beside `cgd@reveal=answer`, on the items they share.

The runs are merged into one run directory (a temporary one) whose models are each run's variants,
named `<method>@<key>=<value>` after the config keys in which the runs differ, plus the one base model
they share; the report is then the ordinary one, so its tables, paired tests, family-wise adjustment,
MDEs and verdicts are the same machinery. Each method that several runs trained is also compared
variant against variant (the first run's variant as reference), adjusted as its own family.

Refused in one line, before anything is written, when the runs' items are not comparable: different
base models or evaluation settings, a benchmark at different versions, an item whose prompt or gold
differs, or no item in common. Benchmarks only some runs evaluated are left out (the page says which);
every other benchmark keeps only the items every run evaluated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness import layout
from harness.errors import HarnessError
from harness.frames import config_values
from harness.io import atomic_write_json, atomic_write_jsonl, to_csv
from harness.rundata import BASE, RunData, item_id, method_of
from harness_app.report.html import Section
from harness_app.report.tables import Table

# Evaluation settings that do not change what an item is or how it is scored.
_EVAL_FREE = ("eval.benchmarks", "eval.limit", "eval.bootstrap_iters", "eval.vllm.")
# Keys that differ between any two runs and say nothing about the model.
_NOT_A_SETTING = ("git_revision", "profile")
CSV_COLUMNS = [
    "method",
    "variant",
    "reference",
    "benchmark",
    "metric",
    "n",
    "delta",
    "ci_low",
    "ci_high",
    "p",
    "p_adjusted",
    "verdict",
]


@dataclass(frozen=True)
class Merged:
    root: Path  # the merged run directory
    suffixes: list[str]  # per run, in the order given: the label suffix of its variants
    dropped_tasks: list[str]  # benchmarks not every run evaluated


def _settings(run: RunData) -> dict[str, object]:
    values = config_values(run.config)
    return {k.removeprefix("config."): v for k, v in values.items()}


def _suffixes(runs: list[RunData]) -> list[str]:
    """Each run's label suffix: the keys whose values differ between the runs (`reveal=none`)."""
    settings = [_settings(r) for r in runs]
    keys = sorted({k for s in settings for k in s})
    differing = [
        k for k in keys if not k.startswith(_NOT_A_SETTING) and len({repr(s.get(k)) for s in settings}) > 1
    ]
    leaves = [k.rsplit(".", 1)[-1] for k in differing]
    names = [leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(differing, leaves)]
    out = [",".join(f"{name}={s.get(key)}" for name, key in zip(names, differing)) for s in settings]
    if len(set(out)) < len(out):  # identical configs: the run ids tell them apart, else their order
        ids = [r.run_id for r in runs]
        out = ids if len(set(ids)) == len(ids) else [f"run{i + 1}" for i in range(len(runs))]
    return out


def _check_evaluation(runs: list[RunData]) -> None:
    settings = [_settings(r) for r in runs]
    keys = sorted({k for s in settings for k in s if k.startswith("eval.") and not k.startswith(_EVAL_FREE)})
    for key in keys:
        values = [s.get(key) for s in settings]
        if len({repr(v) for v in values}) > 1:
            raise HarnessError(
                f"runs evaluate differently ({key}: {', '.join(f'{r.root}: {v!r}' for r, v in zip(runs, values))}); "
                "their items are not comparable"
            )
    missing = [str(r.root) for r in runs if BASE not in r.labels]
    if missing:
        raise HarnessError(f"{', '.join(missing)}: no evaluated base model to compare the runs against")
    bases = [r.fingerprint(BASE) for r in runs]
    if len(set(bases)) > 1:
        raise HarnessError(
            "runs have different base models ("
            + ", ".join(f"{r.root}: {v[:12]}" for r, v in zip(runs, bases))
            + "); a cross-run report compares variants of one student"
        )


def _item_key(record: dict) -> tuple[str | None, str | None]:
    """What makes an item the same item: its prompt and its gold (hashed: GPQA has letters only)."""
    prompt = record.get("prompt")
    digest = hashlib.sha256(prompt.encode()).hexdigest() if isinstance(prompt, str) else None
    gold = record.get("gold")
    return digest, None if gold is None else repr(gold)


def _shared(runs: list[RunData]) -> tuple[dict[str, set[str]], list[str]]:
    """Per benchmark every run evaluated: the item ids every model of every run scored."""
    common = [t for t in runs[0].tasks if all(t in r.tasks for r in runs[1:])]
    dropped = sorted({t for r in runs for t in r.tasks} - set(common))
    shared: dict[str, set[str]] = {}
    for task in common:
        versions = [r.version(BASE, task) for r in runs]
        if len(set(versions)) > 1:
            where = ", ".join(f"{r.root}: {v}" for r, v in zip(runs, versions))
            raise HarnessError(f"{task} is at different versions ({where}); its items are not comparable")
        keys: dict[str, tuple] = {}
        ids: set[str] | None = None
        for run in runs:
            for label in run.labels:
                records = run.samples(label, task)
                seen = set()
                for record in records:
                    item, key = item_id(record), _item_key(record)
                    if keys.setdefault(item, key) != key:
                        raise HarnessError(
                            f"{task} item {item}: its prompt or gold differs between runs ({run.root}); "
                            "the runs evaluate different items under one id"
                        )
                    seen.add(item)
                ids = seen if ids is None else ids & seen
        shared[task] = ids or set()
    if not any(shared.values()):
        raise HarnessError("the runs have no evaluated item in common; nothing to compare")
    return shared, dropped


def _write_label(run: RunData, label: str, into: Path, name: str, shared: dict[str, set[str]]) -> None:
    results = dict(run.results(label))
    results["results"] = {t: v for t, v in results["results"].items() if t in shared}
    for task in shared:
        records = [r for r in run.samples(label, task) if item_id(r) in shared[task]]
        atomic_write_jsonl(into / layout.samples(name, task), records)
    atomic_write_json(into / layout.results(name), results)


def merge(run_dirs: list[str | Path], into: Path) -> Merged:
    """The merged run directory of `run_dirs` under `into` (refuses runs whose items differ)."""
    runs = [RunData(d) for d in run_dirs]
    if len(runs) < 2:
        raise HarnessError("a cross-run report needs at least two run directories")
    if len({r.root.resolve() for r in runs}) < len(runs):
        raise HarnessError("the same run directory was given twice")
    _check_evaluation(runs)
    shared, dropped = _shared(runs)
    suffixes = _suffixes(runs)
    name = "cross-" + "-".join(r.run_id for r in runs)
    root = into / (
        name if len(name) <= 100 else name[:90] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    )
    methods: list[str] = []
    _write_label(runs[0], BASE, root, BASE, shared)
    for run, suffix in zip(runs, suffixes):
        for label in run.labels:
            if method_of(label) == BASE:
                continue
            method, _, seed = label.partition("@seed")
            group = f"{method}@{suffix}"
            methods += [] if group in methods else [group]
            _write_label(run, label, root, f"{group}@seed{seed}" if seed else group, shared)
    first = runs[0].config
    atomic_write_json(
        root / layout.CONFIG,
        {
            "profile": "cross-run",
            "git_revision": first.get("git_revision"),
            "seeds": first.get("seeds") or [0],
            "methods": methods,
            "analysis": first.get("analysis") or {},
            "runs": [{"dir": str(r.root.resolve()), "label suffix": x} for r, x in zip(runs, suffixes)],
            "benchmarks left out (not every run evaluated them)": dropped,
        },
    )
    return Merged(root, suffixes, dropped)


def _variant_changes(merged: RunData, cfg) -> list:
    """Each method's variants against its first variant, on every table column, settled as one family."""
    from harness import drift
    from harness.findings import settle

    by_method: dict[str, list[str]] = {}
    for group in merged.groups:
        if group != BASE:
            by_method.setdefault(group.split("@", 1)[0], []).append(group)
    changes = [
        c
        for variants in by_method.values()
        for other in variants[1:]
        for task, metric in merged.columns()
        if (c := drift.score_change(merged, other, variants[0], task, metric, cfg.alpha))
    ]
    return settle(changes, cfg)


def _fmt(x: float | None, scale: float = 100.0) -> str:
    return "–" if x is None else f"{scale * x:+.1f}" if scale else f"{x:.3g}"


def variants_section(merged: RunData, cfg) -> tuple[Section, Table | str, str]:
    """The variant-vs-variant section, its table (or a line saying there is none), and its CSV."""
    changes = _variant_changes(merged, cfg)
    columns = ["variant", "reference", "benchmark", "n", "Δ (points)", "95% CI", "p", "adjusted p", "verdict"]
    rows, csv_rows = [], []
    for c in changes:
        result = c.comparison.result
        ci = f"[{_fmt(result.ci_low)}, {_fmt(result.ci_high)}]" if result else "–"
        rows.append(
            [
                c.method,
                c.reference,
                c.label,
                str(result.n if result else 0),
                _fmt(c.delta),
                ci,
                _fmt(c.p_value, 0),
                _fmt(c.p_adjusted, 0),
                c.verdict,
            ]
        )
        csv_rows.append(
            [
                c.method.split("@", 1)[0],
                c.method,
                c.reference,
                c.task,
                c.quantity,
                result.n if result else 0,
                c.delta,
                result.ci_low if result else None,
                result.ci_high if result else None,
                c.p_value,
                c.p_adjusted,
                c.verdict,
            ]
        )
    caption = (
        f"Each method's variants against its first run's variant, on the items both scored; paired tests "
        f"adjusted ({cfg.multiplicity}) over these {len(changes)} comparisons, verdicts as in docs/statistics.md."
    )
    table = Table(columns, rows, caption=caption)
    parts: list = [table] if rows else ["No method was trained by more than one of the runs."]
    return Section("variants", "Across runs", parts), parts[0], to_csv(CSV_COLUMNS, csv_rows)
