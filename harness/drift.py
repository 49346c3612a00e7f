"""Format drift and forgetting: does a trained model still answer the way the benchmark expects?

Critique fine-tuning teaches a model to *review* solutions; the risk the paper measures is that
it keeps reviewing when asked to *solve* (no final answer, verdict lines instead), and that it
loses ground on benchmarks outside its training domain. Everything here is per item, so each
change against base can be tested on matched items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from harness.defaults import ALPHA
from harness.rundata import (
    BASE,
    LOGLIKELIHOOD_TASKS,
    MATH_TASKS,
    RunData,
    is_general,
    metric_label,
    unit_cluster,
)
from harness.stats import ItemComparison, PairedTest, compare_items, hierarchical_bootstrap

DEFAULT_ALPHA = ALPHA

_VERDICT = r"(?:correct|incorrect|wrong|right|flawed|valid|invalid|accurate|inaccurate)"
_REVIEWED = r"(?:solution|answer|response|reasoning|approach|proof|derivation|work)"
CRITIQUE_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        # "Conclusion: wrong", "**Conclusion:** right [END]"
        rf"^\W*conclusion\W*[:\-]\W*{_VERDICT}\b",
        # "The solution is incorrect", "the student's answer is not correct", "the answer was wrong"
        rf"\b(?:the|this|your|their|student'?s?|given|proposed|provided)\s+(?:\w+\s+)?{_REVIEWED}\s+"
        rf"(?:is|was|are|seems|appears)\s+(?:not\s+|mostly\s+|partially\s+|entirely\s+|completely\s+)?"
        rf"(?:to\s+be\s+)?{_VERDICT}\b",
        # "Let's review the solution", "Let us verify the given answer", "Let me check the student's steps"
        r"\blet(?:'s|\s+us|\s+me)\s+(?:review|verify|critique|evaluate|check|examine|analy[sz]e)\s+"
        r"(?:the|this|their|your|student'?s?)\s+(?:given\s+|proposed\s+|provided\s+|student'?s?\s+)?"
        r"(?:solution|response|steps|reasoning|work)\b",
        r"^\W*critique\W*:",
        # "Step 3 is incorrect", "step 2 was wrong"
        rf"\bstep\s+\d+\s+(?:is|was)\s+(?:not\s+)?{_VERDICT}\b",
        # "The error is in step 2", "the mistake lies in the second step"
        r"\b(?:error|mistake)\s+(?:is|lies|occurs)\s+in\s+(?:the\s+\w+\s+step|step\s+\d+)",
    )
)

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{\s*[^\s}]")
# Letters must be capitals: "the answer is a subtle one" names no option.
_LETTER = re.compile(
    r"(?i:answer|choice|option)\s*(?i:is)?\s*:?\s*\(?\**\s*[A-D]\b"
    r"|\\boxed\{\s*\(?[A-D]\)?\s*\}"
    r"|^\s*\(?[A-D][).]?\s*$",
    re.MULTILINE,
)
_CODE = re.compile(r"```|^\s*def\s+\w+\s*\(", re.MULTILINE)
IFEVAL_FORMAT_PREFIXES = ("detectable_format:", "startend:", "change_case:", "punctuation:")
MEASURES = ("parseable", "critique", "length", "ifeval_format")
_MEASURE_NAMES = {
    "parseable": "parseable final answers",
    "critique": "critique-style answers",
    "length": "mean response length",
    "ifeval_format": "IFEval format instructions",
}


def is_critique(text: str) -> bool:
    """True when the answer reviews a solution (verdict lines) instead of producing one."""
    return any(p.search(text) for p in CRITIQUE_PATTERNS)


# Tells "the record has no extraction field" apart from "the checker extracted nothing" (None).
NO_EXTRACTION = object()


def _answer_detector(task: str):
    """The pattern that finds a final answer in this task's responses; None: no answer format."""
    if task in MATH_TASKS:
        return _BOXED.search
    if task == "humaneval":
        return _CODE.search
    if task.startswith("gpqa") and task not in LOGLIKELIHOOD_TASKS:
        return _LETTER.search
    return None


def has_final_answer(task: str, response: str | None, extracted: object = NO_EXTRACTION) -> bool | None:
    """Whether the answer can be scored at all; None when unknown or the task has no answer format.

    The checker's own extraction decides (the `extracted` field of each sample record), so
    "parseable" means here what it means to the score. HumanEval is the exception: its checker runs
    whatever text it gets as a program, so its extraction never says "no code"; a code block or a
    `def` does. Records written before `extracted` existed fall back to the same patterns.
    """
    detector = _answer_detector(task)
    if detector is None:
        return None
    if extracted is not NO_EXTRACTION and task != "humaneval":
        return extracted is not None and bool(str(extracted).strip())
    if response:
        return bool(detector(response))
    return False if response is not None else None


def applicable_measures(task: str) -> tuple[str, ...]:
    """The drift measures a generative task's records carry: the one rule that both the report's
    comparisons and the planner's family size (harness/findings.py) follow."""
    skip = set()
    if _answer_detector(task) is None:
        skip.add("parseable")
    if task != "ifeval":
        skip.add("ifeval_format")
    return tuple(m for m in MEASURES if m not in skip)


def response_length(record: dict) -> tuple[float, str] | None:
    """Completion length in tokens, or in characters when the record has no token count."""
    tokens = record.get("completion_tokens")
    if isinstance(tokens, (int, float)):
        return float(tokens), "tokens"
    if isinstance(record.get("response"), str):
        return float(len(record["response"])), "chars"
    return None


def ifeval_format_pass(record: dict) -> float | None:
    """Pass rate of the record's format instructions (None when it has none, or no per-item verdicts)."""
    ids = record.get("instruction_id_list") or (record.get("doc") or {}).get("instruction_id_list")
    verdicts = (record.get("metrics") or {}).get("inst_level_strict_acc")
    if not isinstance(ids, list) or not isinstance(verdicts, list) or len(ids) != len(verdicts):
        return None
    chosen = [float(v) for i, v in zip(ids, verdicts) if str(i).startswith(IFEVAL_FORMAT_PREFIXES)]
    return float(np.mean(chosen)) if chosen else None


def _item_id(record: dict) -> str:
    return str(record.get("item_id", record.get("doc_id")))


@dataclass(frozen=True)
class Measures:
    values: dict[str, dict[str, float]]  # measure -> item_id -> value
    length_unit: str  # "tokens", "chars", or "" when absent or mixed


def item_measures(records: list[dict], task: str) -> Measures:
    """Per-item values of every drift measure that applies to this task's records."""
    values: dict[str, dict[str, float]] = {m: {} for m in MEASURES}
    units = set()
    for rec in records:
        item = _item_id(rec)
        response = rec.get("response") if isinstance(rec.get("response"), str) else None
        parseable = has_final_answer(task, response, rec.get("extracted", NO_EXTRACTION))
        if parseable is not None:
            values["parseable"][item] = float(parseable)
        if response is not None:
            values["critique"][item] = float(is_critique(response))
        length = response_length(rec)
        if length is not None:
            values["length"][item] = length[0]
            units.add(length[1])
        if task == "ifeval" and (fmt := ifeval_format_pass(rec)) is not None:
            values["ifeval_format"][item] = fmt
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
    for measure in MEASURES:
        maps = [m.values[measure] for m in per_label]
        shared = set.intersection(*(set(m) for m in maps))
        merged[measure] = {i: float(np.mean([m[i] for m in maps])) for i in sorted(shared)}
    return _drop_mixed_lengths(merged, {m.length_unit for m in per_label if m.length_unit})


def is_generative(run: RunData, task: str) -> bool:
    if task in LOGLIKELIHOOD_TASKS:
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
    critique: float | None
    mean_length: float | None
    length_unit: str
    ifeval_format: float | None
    # Share of responses whose thinking opened and never closed (scored no_answer; eval.reasoning_end).
    # Descriptive only, not a compared measure: for a model that does not think it is 0 everywhere.
    unclosed_thinking: float | None = None


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
                    _mean(m.values["critique"]),
                    _mean(m.values["length"]),
                    m.length_unit,
                    _mean(m.values["ifeval_format"]),
                    unclosed_share(records),
                )
            )
    return rows


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
        return self.quantity not in MEASURES

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
        f"{_MEASURE_NAMES[measure]} on {task}",
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


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _p_text(change: Change) -> str:
    if change.p_adjusted is None:
        return format_p(change.p_value)
    return f"{format_p(change.p_value)}, adjusted {format_p(change.p_adjusted).removeprefix('p ')}"


_TEST_NAMES = {
    "mcnemar": "McNemar",
    "sign-flip": "sign-flip test",
    "hierarchical-bootstrap": "hierarchical bootstrap",
}


def describe_change(change: Change) -> str:
    scale = 100.0 if change.in_points else 1.0
    size_unit = "points" if change.in_points else change.unit
    direction = "up" if change.delta > 0 else "down"
    result = change.comparison.result
    test = _TEST_NAMES.get(result.test, result.test) if result else "no test"
    return (
        f"{change.label} {direction} {abs(change.delta) * scale:.1f} {size_unit} "
        f"({change.base * scale:.1f} -> {change.value * scale:.1f}, {_p_text(change)}, "
        f"{test}, {change.comparison.matched} matched items)"
    )


def _detectable(changes: list[Change]) -> str:
    """What the comparisons that found nothing could have found: their smallest MDE."""
    scored = [c for c in changes if c.is_score and c.comparison.result is not None]
    if not scored:
        return ""
    n = max(c.comparison.result.n for c in scored)
    found = [c.mde for c in scored if c.mde is not None]
    if not found:
        return f" At n = {n} items no change of any size could have been detected at 80 % power."
    return (
        f" The smallest change these comparisons could have detected at 80 % power was "
        f"{100 * min(found):.1f} points (n = {n})."
    )


def paragraph(method: str, changes: list[Change], alpha: float) -> str:
    """A few sentences on what moved significantly for one method, what did not, and what could have."""
    moved = [c for c in changes if c.significant]
    still = [c for c in changes if not c.significant and c.is_score]
    parts = [
        f"{method} vs base (paired tests on matched items; p adjusted over the report's family, "
        f"alpha = {alpha:g})."
    ]
    if moved:
        parts.append("Moved significantly: " + "; ".join(describe_change(c) for c in moved) + ".")
    else:
        parts.append("Nothing moved significantly." + _detectable(changes))
    if still:
        parts.append(
            "No significant change in: "
            + ", ".join(
                f"{c.label} ({c.delta * 100:+.1f} points, {_p_text(c)}"
                + (f", {c.verdict}" if c.verdict else "")
                + ")"
                for c in still
            )
            + "."
        )
    forgot = list(dict.fromkeys(c.task for c in moved if c.is_score and is_general(c.task) and c.delta < 0))
    if forgot:
        parts.append("Forgetting flagged on: " + ", ".join(forgot) + ".")
    return " ".join(parts)


def paragraphs(
    run: RunData, alpha: float = DEFAULT_ALPHA, changes: list[Change] | None = None
) -> dict[str, str]:
    """Method -> its generated paragraph, in run order."""
    changes = changes_vs_base(run, alpha) if changes is None else changes
    return {
        method: paragraph(method, [c for c in changes if c.method == method], alpha)
        for method in _methods(run)
    }
