"""Where the math graders disagree: runs scored with `eval.math_grader=both`.

Each math sample record of such a run carries `verdicts` ({"math-verify": bool, "qwen": bool}).
A score that moves when only the grader changes is a grading artefact, not a model difference,
so the report names the items the graders split on, per benchmark and model.
"""

from __future__ import annotations

from harness.io import to_csv
from harness.rundata import RunData
from harness_app.report.sections import Section
from harness_app.report.tables import Table

# Ids listed in a table cell; the CSV lists them all.
_SHOWN_IDS = 8
_FIRST = "math-verify"


def _graders(records: list[dict]) -> list[str]:
    names = {name for rec in records for name in rec["verdicts"]}
    return sorted(names, key=lambda name: (name != _FIRST, name))


def _shown(ids: list[str]) -> str:
    if len(ids) <= _SHOWN_IDS:
        return ", ".join(ids)
    return ", ".join(ids[:_SHOWN_IDS]) + f", ... (+{len(ids) - _SHOWN_IDS})"


def grader_disagreement(run: RunData) -> Section | None:
    """Per (benchmark, model): items with every grader's verdict, each grader's score, and the
    items they split on. None when no record in the run carries verdicts."""
    display, plain = [], []
    graders: list[str] = []
    for task in run.tasks:
        for label in run.labels:
            records = [r for r in run.samples(label, task) if isinstance(r.get("verdicts"), dict)]
            if not records:
                continue
            graders = graders or _graders(records)
            correct = {g: [r for r in records if r["verdicts"].get(g)] for g in graders}
            split = sorted(
                {
                    str(r.get("item_id", r.get("doc_id")))
                    for r in records
                    if len({bool(r["verdicts"].get(g)) for g in graders}) > 1
                },
                key=_natural,
            )
            only = [
                sum(1 for r in correct[g] if not all(r["verdicts"].get(o) for o in graders)) for g in graders
            ]
            n = len(records)
            scores = [f"{100 * len(correct[g]) / n:.1f}" for g in graders]
            display.append([task, label, str(n), *scores, str(len(split)), *map(str, only), _shown(split)])
            plain.append(
                [task, label, n, *(len(correct[g]) for g in graders), len(split), *only, " ".join(split)]
            )
    if not display:
        return None
    columns = [
        "benchmark",
        "model",
        "items",
        *(f"{g} %" for g in graders),
        "split",
        *(f"{g} only" for g in graders),
        "split items",
    ]
    csv_columns = [
        "benchmark",
        "model",
        "items",
        *(f"{g}_correct" for g in graders),
        "split",
        *(f"{g}_only" for g in graders),
        "split_item_ids",
    ]
    caption = (
        f"Math graders compared on the same responses: items {' and '.join(graders)} "
        'judge differently ("only": items that grader alone accepts).'
    )
    return Section(Table(columns, display, caption=caption), to_csv(csv_columns, plain))


def _natural(item_id: str) -> tuple:
    """Numeric ids in numeric order ("2" before "10"), others after, as text."""
    return (0, int(item_id), "") if item_id.isdigit() else (1, 0, item_id)
