"""The gate's requirements inside one run (`harness gate --require` / `--non-inferior`, docs/gates.md):
a small language, `<label>.<task>[.<metric>] OP <label>.<task>[.<metric>] [+|- points]` or
`... OP <number>`, parsed and checked against a run's scores. Baselines (a recorded run against a
new one) are harness_app/gate.py's; both give `Check`s.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.rundata import RunData, task_sort_key, unit_cluster
from harness.stats import compare_items


@dataclass(frozen=True)
class Check:
    what: str
    baseline: float | None  # baseline score, or the right-hand side of a requirement
    now: float | None
    delta: float | None
    p_value: float | None
    passed: bool
    why: str


_OPS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, abs_tol=1e-9),
}
_REF = r"[A-Za-z][\w@-]*\.\w+(?:\.[\w@]+)?"
_NUM = r"\d+(?:\.\d*)?|\.\d+"
_REQUIREMENT = re.compile(
    rf"^\s*(?P<lhs>{_REF})\s*(?P<op>>=|<=|==|>|<)\s*"
    rf"(?:(?P<rhs>{_REF})\s*(?:(?P<sign>[+-])\s*(?P<offset>{_NUM}))?|(?P<number>[+-]?\s*(?:{_NUM})))\s*$"
)
REQUIREMENT_SYNTAX = (
    "'<label>.<task>[.<metric>] OP <label>.<task>[.<metric>] [+|- points]' or "
    "'<label>.<task>[.<metric>] OP <number>', OP one of >= > <= < ==, scores in percent"
)


@dataclass(frozen=True)
class Ref:
    label: str
    task: str
    metric: str | None

    def __str__(self) -> str:
        return ".".join(p for p in (self.label, self.task, self.metric) if p)


@dataclass(frozen=True)
class Requirement:
    text: str
    lhs: Ref
    op: str
    rhs: Ref | None  # None: compare against `offset` alone
    offset: float


def _ref(text: str) -> Ref:
    parts = text.split(".")
    return Ref(parts[0], parts[1], parts[2] if len(parts) > 2 else None)


def parse_requirement(text: str) -> Requirement:
    """Parse one --require expression (a regular grammar, never evaluated as code)."""
    match = _REQUIREMENT.match(text)
    if not match:
        raise HarnessError(f"bad --require expression {text!r}: expected {REQUIREMENT_SYNTAX}")
    if match["number"] is not None:
        return Requirement(
            text.strip(), _ref(match["lhs"]), match["op"], None, float(match["number"].replace(" ", ""))
        )
    offset = float(match["offset"] or 0.0) * (-1.0 if match["sign"] == "-" else 1.0)
    return Requirement(text.strip(), _ref(match["lhs"]), match["op"], _ref(match["rhs"]), offset)


def _resolve(run: RunData, ref: Ref, text: str) -> tuple[float, dict[str, float]]:
    """A reference's score in percent and its per-item scores; a method name averages its seeds."""
    names = sorted(set(run.labels) | set(run.groups), key=run.label_key)
    if ref.label not in names:
        raise HarnessError(f"--require {text!r}: unknown label {ref.label!r}; valid: {', '.join(names)}")
    labels = [ref.label] if ref.label in run.labels else run.groups[ref.label]
    tasks = sorted(set.intersection(*(set(run.tasks_of(lb)) for lb in labels)), key=task_sort_key)
    if ref.task not in tasks:
        raise HarnessError(
            f"--require {text!r}: unknown task {ref.task!r} for {ref.label}; valid: {', '.join(tasks)}"
        )
    metric = ref.metric or run.headline(ref.task)
    metrics = sorted(set.intersection(*(set(run.metrics_of(lb, ref.task)) for lb in labels)))
    scores = [run.score(lb, ref.task, metric) for lb in labels]
    if metric not in metrics or any(s is None for s in scores):
        raise HarnessError(
            f"--require {text!r}: unknown metric {metric!r} for {ref.label}.{ref.task}; "
            f"valid: {', '.join(metrics)}"
        )
    items = (
        run.item_scores(ref.label, ref.task, metric)
        if ref.label in run.labels
        else run.group_item_scores(ref.label, ref.task, metric)
    )
    return 100 * float(np.mean(scores)), items


def check_requirement(run: RunData, req: Requirement) -> Check:
    lhs, lhs_items = _resolve(run, req.lhs, req.text)
    if req.rhs is None:
        target, p, described = req.offset, None, f"{req.offset:g}"
    else:
        rhs, rhs_items = _resolve(run, req.rhs, req.text)
        target = rhs + req.offset
        comparison = compare_items(rhs_items, lhs_items, cluster_of=unit_cluster)
        p = comparison.result.p_value if comparison.result else None
        sign = "+" if req.offset > 0 else "-"
        described = f"{req.rhs} = {rhs:.2f}" + (f" {sign} {abs(req.offset):g}" if req.offset else "")
    holds = bool(_OPS[req.op](lhs, target))
    why = f"{req.lhs} = {lhs:.2f} {req.op} {described}: {'holds' if holds else 'does not hold'}"
    return Check(req.text, target, lhs, lhs - target, p, holds, why)


def check_non_inferior(run: RunData, req: Requirement, confidence: float) -> Check:
    """lhs >= rhs - margin, judged by the interval of the paired difference, not its point estimate:
    it holds when the lower end of the interval of (lhs - rhs) is above -margin."""
    if req.rhs is None or req.op != ">=" or req.offset > 0:
        raise HarnessError(
            f"bad --non-inferior expression {req.text!r}: expected "
            "'<label>.<task>[.<metric>] >= <label>.<task>[.<metric>] - <margin points>'"
        )
    margin = -req.offset
    lhs, lhs_items = _resolve(run, req.lhs, req.text)
    rhs, rhs_items = _resolve(run, req.rhs, req.text)
    result = compare_items(rhs_items, lhs_items, confidence=confidence, cluster_of=unit_cluster).result
    if result is None:
        raise HarnessError(f"--non-inferior {req.text!r}: {req.lhs} and {req.rhs} share no items")
    low, high = 100 * result.ci_low, 100 * result.ci_high
    holds = low > -margin
    why = (
        f"{req.lhs} - {req.rhs} = {lhs - rhs:+.2f} points, {100 * confidence:g}% interval [{low:+.2f}, {high:+.2f}] "
        f"({result.test}, n = {result.n}); lower end {'above' if holds else 'not above'} -{margin:g}"
    )
    return Check(req.text, rhs - margin, lhs, lhs - rhs, result.p_value, holds, why)
