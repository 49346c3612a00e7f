"""A model's score on one benchmark metric as the report states it: the mean in percent with its 95 %
interval over items (one seed), or mean ± standard deviation over seeds with the seed's share of the
variance. The report's tables and each evaluation's tracker summary (harness_app/tracking.py) read it
here, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.rundata import RunData, unit_cluster
from harness.stats import aggregate_interval, display_digits, score_interval, seed_variance_share


@dataclass(frozen=True)
class ModelScore:
    """A model's score on one (task, metric), in percent."""

    mean: float
    low: float | None  # 95 % interval (one seed; see harness.stats.score_interval)
    high: float | None
    spread: float | None  # standard deviation across seeds (several seeds only)
    n_items: int
    n_seeds: int
    seed_share: float | None = None  # share of the score's variance due to the seed (several seeds)

    def text(self) -> str:
        if self.spread is not None:
            return f"{self.mean:.1f} ± {self.spread:.1f}"
        if self.low is not None and self.high is not None:
            d = display_digits(self.low, self.high, 1)  # never shown as a point
            return f"{self.mean:.{d}f} [{self.low:.{d}f}, {self.high:.{d}f}]"
        return f"{self.mean:.1f}"


def label_score(run: RunData, label: str, task: str, metric: str) -> ModelScore | None:
    """One evaluated model's score and 95 % interval, as its table cell shows them (and its tracker)."""
    items = run.item_scores(label, task, metric)
    if items:
        keys = sorted(items)
        ci = score_interval(np.array([items[k] for k in keys]), clusters=[unit_cluster(k) for k in keys])
        return ModelScore(100 * ci.mean, 100 * ci.low, 100 * ci.high, None, ci.n, 1)
    aggregate = run.aggregate(label, task, metric)
    if aggregate is None:
        return None
    value, stderr = aggregate
    n = int(((run.results(label).get("n-samples") or {}).get(task) or {}).get("effective", 0))
    ci = aggregate_interval(value, stderr, n)
    if ci is None:
        return ModelScore(100 * value, None, None, None, n, 1)
    return ModelScore(100 * value, 100 * ci.low, 100 * ci.high, None, n, 1)


def model_score(run: RunData, group: str, task: str, metric: str) -> ModelScore | None:
    """One seed: score with its 95 % interval. Several seeds: mean ± standard deviation across them,
    and the share of variance that the seed (not item sampling) accounts for."""
    per_seed = [s for label in run.groups[group] if (s := label_score(run, label, task, metric))]
    if not per_seed:
        return None
    if len(per_seed) == 1:
        return per_seed[0]
    means = np.array([s.mean for s in per_seed])
    per_label = [run.item_scores(label, task, metric) for label in run.groups[group]]
    shared = sorted(set.intersection(*(set(m) for m in per_label)))
    share = seed_variance_share(np.array([[m[i] for i in shared] for m in per_label])) if shared else None
    return ModelScore(
        float(means.mean()),
        None,
        None,
        float(means.std(ddof=1)),
        min(s.n_items for s in per_seed),
        len(per_seed),
        share,
    )
