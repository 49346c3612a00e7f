"""`Change`: one quantity (a score or a drift measure) of one model group against another,
tested on matched items; every method's changes against base; forgetting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.defaults import ALPHA
from harness.drift.measures import (
    Measures,
    applicable_measures,
    is_generative,
    item_measures,
    measure_label,
    measure_names,
)
from harness.rundata import BASE, RunData, is_general, metric_label, unit_cluster
from harness.stats import ItemComparison, PairedTest, compare_items, hierarchical_bootstrap

DEFAULT_ALPHA = ALPHA


@dataclass(frozen=True)
class Change:
    """One quantity of one model group against a reference group, tested on matched items.

    `p_adjusted`, `mde` and `verdict` are filled in by `harness.findings` once the whole family of
    comparisons a report makes is known (an adjusted p depends on the family).
    """

    method: str
    task: str
    quantity: str  # a metric name, or a drift measure
    label: str  # human-readable name of the quantity
    base: float  # the reference's value (base, unless `reference` says otherwise)
    value: float
    comparison: ItemComparison
    alpha: float
    unit: str = ""  # for lengths: "tokens" or "chars"
    reference: str = BASE
    seeds: int = 1  # most seeds on either side; > 1: hierarchical bootstrap
    p_adjusted: float | None = None
    mde: float | None = None  # minimum detectable |delta| at 80 % power, same scale as delta
    verdict: str = ""

    @property
    def delta(self) -> float:
        return self.value - self.base

    @property
    def p_value(self) -> float | None:
        return self.comparison.result.p_value if self.comparison.result else None

    @property
    def significant(self) -> bool:
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        return p is not None and p < self.alpha

    @property
    def is_score(self) -> bool:
        return self.quantity not in measure_names()

    @property
    def in_points(self) -> bool:
        """Fractions are shown as percentage points; lengths keep their unit."""
        return self.quantity != "length"

    @property
    def key(self) -> str:
        return f"{self.method} vs {self.reference}: {self.label}"


def compare_groups(
    per_label_a: list[dict[str, float]], per_label_b: list[dict[str, float]]
) -> ItemComparison:
    """One seed each: the paired item test. Several seeds on either side: the hierarchical
    bootstrap over seeds then items, on the items every seed of both sides scored. Either way,
    units expanded from one item (IFEval's instructions) are tested as a cluster: the item."""
    if len(per_label_a) == 1 and len(per_label_b) == 1:
        return compare_items(per_label_a[0], per_label_b[0], cluster_of=unit_cluster)
    every = [set(m) for m in (*per_label_a, *per_label_b)]
    shared = sorted(set.intersection(*every)) if every else []
    union = set().union(*every) if every else set()
    if not shared:
        return ItemComparison(None, 0, len(union), 0)
    a = np.array([[m[i] for i in shared] for m in per_label_a])
    b = np.array([[m[i] for i in shared] for m in per_label_b])
    h = hierarchical_bootstrap(a, b, clusters=[unit_cluster(i) for i in shared])
    result = PairedTest(
        "hierarchical-bootstrap",
        h.n,
        h.mean_a,
        h.mean_b,
        h.delta,
        h.ci_low,
        h.ci_high,
        h.p_value,
        h.discordance,
        "hierarchical-bootstrap",
        h.clusters,
        h.stderr,
    )
    return ItemComparison(result, len(shared), len(union) - len(shared), 0)


def _change(
    method: str,
    task: str,
    quantity: str,
    label: str,
    base: list[dict[str, float]],
    other: list[dict[str, float]],
    alpha: float,
    unit: str = "",
    reference: str = BASE,
) -> Change | None:
    if not any(base) or not any(other):
        return None
    comparison = compare_groups(base, other)
    if comparison.result is None:
        return None
    return Change(
        method,
        task,
        quantity,
        label,
        comparison.result.mean_a,
        comparison.result.mean_b,
        comparison,
        alpha,
        unit,
        reference,
        max(len(base), len(other)),
    )


def _methods(run: RunData) -> list[str]:
    return [g for g in run.groups if g != BASE] if BASE in run.groups else []


def score_change(
    run: RunData, method: str, reference: str, task: str, metric: str, alpha: float = DEFAULT_ALPHA
) -> Change | None:
    """One group's score on one (task, metric) against another group's, on matched items."""
    per_label = {
        g: [run.item_scores(label, task, metric) for label in run.groups[g]] for g in (method, reference)
    }
    return _change(
        method,
        task,
        metric,
        metric_label(task, metric),
        per_label[reference],
        per_label[method],
        alpha,
        reference=reference,
    )


def score_changes(run: RunData, alpha: float = DEFAULT_ALPHA) -> list[Change]:
    """Every method's score on every table column against base."""
    return [
        c
        for method in _methods(run)
        for task, metric in run.columns()
        if (c := score_change(run, method, BASE, task, metric, alpha))
    ]


def label_measures(run: RunData, group: str, task: str) -> list[Measures]:
    return [item_measures(run.samples(label, task), task) for label in run.groups[group]]


def _measure_change(
    method: str,
    reference: str,
    task: str,
    measure: str,
    base: list[Measures],
    other: list[Measures],
    alpha: float,
) -> Change | None:
    units = {m.length_unit for m in (*base, *other)}
    if measure == "length" and len(units) != 1:
        return None
    return _change(
        method,
        task,
        measure,
        f"{measure_label(measure)} on {task}",
        [m.values[measure] for m in base],
        [m.values[measure] for m in other],
        alpha,
        next(iter(units)) if measure == "length" else "",
        reference,
    )


def measure_change(
    run: RunData, method: str, reference: str, task: str, measure: str, alpha: float = DEFAULT_ALPHA
) -> Change | None:
    return _measure_change(
        method,
        reference,
        task,
        measure,
        label_measures(run, reference, task),
        label_measures(run, method, task),
        alpha,
    )


def measure_changes(run: RunData, alpha: float = DEFAULT_ALPHA) -> list[Change]:
    """Every method's drift measures against base, per generative task (each record measured once)."""
    base = {task: label_measures(run, BASE, task) for task in run.tasks if is_generative(run, task)}
    changes = []
    for method in _methods(run):
        for task, base_measures in base.items():
            other = label_measures(run, method, task)
            changes += [
                c
                for measure in applicable_measures(task)
                if (c := _measure_change(method, BASE, task, measure, base_measures, other, alpha))
            ]
    return changes


def changes_vs_base(run: RunData, alpha: float = DEFAULT_ALPHA) -> list[Change]:
    """Scores and drift measures of every method against base, tested on matched items."""
    return score_changes(run, alpha) + measure_changes(run, alpha)


def forgetting(
    run: RunData, alpha: float = DEFAULT_ALPHA, changes: list[Change] | None = None
) -> list[Change]:
    """Headline-score changes on general (out-of-domain) benchmarks; significant ones are flagged.

    `changes` reuses an already computed `changes_vs_base` result.
    """
    changes = score_changes(run, alpha) if changes is None else changes
    return [c for c in changes if c.is_score and is_general(c.task) and c.quantity == run.headline(c.task)]
