"""Regression gates: record a baseline from a run, then check later runs against it.

A check against the baseline fails for a (label, task) when the score dropped by more than
`max_drop` percentage points AND the paired test on the same items says the drop is significant
at `alpha` after adjusting the p-values of all baseline checks together (Holm by default).
Requiring both keeps noise on small benchmarks from failing CI while still catching real
regressions. `--require` expressions add comparisons inside one run ("cgd.math500 >=
base.math500"); `--non-inferior` expressions ("cgd.ifeval >= base.ifeval - 2") hold when the
interval of the paired difference, not its point estimate, stays above the margin. See docs/gates.md.

Exit codes: 0 pass, 1 regression (GateResult.exit_code), 2 unusable input (HarnessError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import layout
from harness.defaults import ALPHA, GATE_MAX_DROP, MULTIPLICITY
from harness.drift import format_p
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json, stable_hash
from harness.rundata import BASE, RunData, task_sort_key, unit_cluster
from harness.stats import adjust, check_method, compare_items
from harness_app.report.tables import Table, to_markdown
from harness_app.requirements import Check, check_non_inferior, check_requirement, parse_requirement

SCHEMA = "cgd-harness-baseline/1"
DEFAULT_MAX_DROP = GATE_MAX_DROP
DEFAULT_ALPHA = ALPHA
DEFAULT_MULTIPLICITY = MULTIPLICITY


def data_fingerprint(task: str, version: str, item_ids: Sequence[str]) -> str:
    """Identifies a benchmark's exact item set and task version."""
    return stable_hash({"task": task, "version": version, "item_ids": sorted(item_ids)})


def _task_entry(run: RunData, label: str, task: str) -> dict[str, Any]:
    metric = run.headline(task)
    items = run.item_scores(label, task, metric)
    if not items:
        raise HarnessError(
            f"cannot record {label}.{task}: {layout.samples(label, task)} has no per-item '{metric}' scores"
        )
    version = run.version(label, task)
    return {
        "metric": metric,
        "score": round(100 * float(np.mean(list(items.values()))), 6),
        "n": len(items),
        "version": version,
        "data_fingerprint": data_fingerprint(task, version, list(items)),
        "items": dict(sorted(items.items())),
    }


def record_baseline(run_dir: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Write the baseline of every evaluated label and task of a run; returns what was written."""
    run = RunData(run_dir)
    baseline = {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "git_revision": run.git_revision,
        "labels": {
            label: {
                "model_fingerprint": run.fingerprint(label),
                "tasks": {task: _task_entry(run, label, task) for task in run.tasks_of(label)},
            }
            for label in run.labels
        },
    }
    atomic_write_json(out_path, baseline)
    return baseline


def _malformed(path: Path, what: str) -> HarnessError:
    return HarnessError(f"baseline {path}: malformed ({what}); re-record it with `harness gate record`")


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and validate a baseline file; anything unusable raises HarnessError (exit 2)."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise _malformed(path, f"expected schema {SCHEMA!r}")
    labels = data.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise _malformed(path, "no labels")
    for label, entry in labels.items():
        tasks = entry.get("tasks") if isinstance(entry, dict) else None
        if not isinstance(tasks, dict):
            raise _malformed(path, f"label {label!r} has no tasks")
        for task, t in tasks.items():
            _validate_task(path, f"{label}.{task}", task, t)
    return data


def _validate_task(path: Path, where: str, task: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise _malformed(path, f"{where} is not an object")
    for key, kind in (("metric", str), ("version", str), ("data_fingerprint", str), ("items", dict)):
        if not isinstance(entry.get(key), kind):
            raise _malformed(path, f"{where}.{key} missing or not a {kind.__name__}")
    items = entry["items"]
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items.values()):
        raise _malformed(path, f"{where}.items must map item ids to numbers")
    if data_fingerprint(task, entry["version"], list(items)) != entry["data_fingerprint"]:
        raise _malformed(path, f"{where}: data_fingerprint does not match its items and version")


@dataclass(frozen=True)
class GateResult:
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def table(self) -> str:
        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        rows = [
            [
                c.what,
                num(c.baseline, ".2f"),
                num(c.now, ".2f"),
                num(c.delta, "+.2f"),
                format_p(c.p_value) if c.p_value is not None else "-",
                "pass" if c.passed else "FAIL",
                c.why,
            ]
            for c in self.checks
        ]
        columns = ["check", "baseline", "now", "delta", "p", "verdict", "why"]
        failed = sum(not c.passed for c in self.checks)
        verdict = "PASSED" if self.passed else f"FAILED ({failed} of {len(self.checks)} checks)"
        return to_markdown(Table(columns, rows)) + f"\ngate {verdict}\n"


@dataclass(frozen=True)
class _Pending:
    """A baseline check before its p-value is adjusted with the others'."""

    what: str
    before: float
    now: float
    p: float
    test: str


def _compare_to_baseline(run: RunData, label: str, task: str, entry: dict, path: Path) -> _Pending | Check:
    what = f"{label}.{task}"
    if label not in run.labels:
        return Check(what, entry.get("score"), None, None, None, False, "label missing from the run")
    if task not in run.tasks_of(label):
        return Check(what, entry.get("score"), None, None, None, False, "task missing from the run")
    version = run.version(label, task)
    if version != entry["version"]:
        raise HarnessError(
            f"baseline {path}: {what} was recorded on task version {entry['version']}, "
            f"the run has version {version}; re-record the baseline"
        )
    now_items = run.item_scores(label, task, entry["metric"])
    if not now_items:
        raise HarnessError(f"{what}: the run has no per-item '{entry['metric']}' scores to compare")
    if data_fingerprint(task, version, list(now_items)) != entry["data_fingerprint"]:
        shared = len(now_items.keys() & entry["items"].keys())
        raise HarnessError(
            f"baseline {path}: {what} was recorded on another item set "
            f"({len(entry['items'])} items in the baseline, {len(now_items)} in the run, "
            f"{shared} shared); re-record the baseline"
        )
    result = compare_items(entry["items"], now_items, cluster_of=unit_cluster).result
    assert result is not None  # identical item sets, non-empty
    return _Pending(what, 100 * result.mean_a, 100 * result.mean_b, result.p_value, result.test)


def _judge_baseline(c: _Pending, p_adjusted: float, max_drop: float, alpha: float, adjusted: bool) -> Check:
    drop = c.before - c.now
    p_name = "adjusted p" if adjusted else "p"
    if drop > max_drop and p_adjusted < alpha:
        why = f"dropped {drop:.2f} points > max-drop {max_drop:g} and significant ({c.test}, {p_name} < {alpha:g})"
        return Check(c.what, c.before, c.now, -drop, p_adjusted, False, why)
    if drop > max_drop:
        why = f"dropped {drop:.2f} points > max-drop {max_drop:g} but not significant ({c.test}, {p_name} >= {alpha:g})"
    elif drop > 0 and p_adjusted < alpha:
        why = f"significant drop of {drop:.2f} points, within max-drop {max_drop:g}"
    else:
        why = f"within max-drop {max_drop:g}"
    return Check(c.what, c.before, c.now, -drop, p_adjusted, True, why)


def _baseline_order(run: RunData, labels: dict[str, Any]) -> list[str]:
    return sorted(labels, key=lambda lb: (lb != BASE, run.label_key(lb)))


def check_gate(
    run_dir: str | Path,
    baseline_path: str | Path | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    alpha: float = DEFAULT_ALPHA,
    requires: Sequence[str] = (),
    multiplicity: str = DEFAULT_MULTIPLICITY,
    non_inferior: Sequence[str] = (),
) -> GateResult:
    """Check a run against a baseline (every label and task in it), `requires` and `non_inferior`.

    The baseline checks are one family: their p-values are adjusted together (`multiplicity`)
    before each is compared with `alpha`.
    """
    if baseline_path is None and not requires and not non_inferior:
        raise HarnessError(
            "nothing to check: give --baseline FILE, --require EXPR and/or --non-inferior EXPR"
        )
    if not 0.0 < alpha < 1.0:
        raise HarnessError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if max_drop < 0:
        raise HarnessError(f"--max-drop must be >= 0 points, got {max_drop:g}")
    check_method(multiplicity)
    requirements = [parse_requirement(text) for text in requires]
    margins = [parse_requirement(text) for text in non_inferior]
    run = RunData(run_dir)
    checks: list[Check] = []
    if baseline_path is not None:
        path = Path(baseline_path)
        labels = load_baseline(path)["labels"]
        found = [
            _compare_to_baseline(run, label, task, labels[label]["tasks"][task], path)
            for label in _baseline_order(run, labels)
            for task in sorted(labels[label]["tasks"], key=task_sort_key)
        ]
        pending = [c for c in found if isinstance(c, _Pending)]
        adjusted = dict(zip(map(id, pending), adjust([c.p for c in pending], multiplicity)))
        checks.extend(
            c
            if isinstance(c, Check)
            else _judge_baseline(c, adjusted[id(c)], max_drop, alpha, multiplicity != "none")
            for c in found
        )
    checks.extend(check_requirement(run, req) for req in requirements)
    checks.extend(check_non_inferior(run, req, 1.0 - alpha) for req in margins)
    return GateResult(checks)
