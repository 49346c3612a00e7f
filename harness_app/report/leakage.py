"""How much of CGD's target the critiques hand over, per dataset: a Markdown table.

The statistics are computed at build time (cgd/teachers/leakage.py) and stored in each dataset's
metadata (`data/<method>.meta.json`, key `leakage`); this module only formats them, so the report
needs neither the checker nor the rows. A pure function: wiring it into the page is the report's job.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness_app.report.tables import Table, to_markdown

COLUMNS = [
    "dataset",
    "teacher",
    "reveal",
    "problems dropped",
    "n",
    "critiques stating the gold answer",
    "ŷ covered by the critique's 6-grams: median",
    "mean [95% CI]",
]
MISSING = "–"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _stated(entry: Mapping | None) -> str:
    if not entry:
        return MISSING
    return f"{entry['count']}/{entry['n']} ({_pct(entry['mean'])}% [{_pct(entry['low'])}, {_pct(entry['high'])}])"


def _coverage(entry: Mapping | None) -> tuple[str, str]:
    if not entry:
        return MISSING, MISSING
    return (
        f"{_pct(entry['median'])}%",
        f"{_pct(entry['mean'])}% [{_pct(entry['low'])}, {_pct(entry['high'])}]",
    )


def _dropped(failures: Mapping | None) -> str:
    """Problems the teach stage dropped for want of usable text (teacher.max_dropped_fraction), by cause."""
    if failures is None:
        return MISSING
    causes = {k: n for k, n in failures.items() if k != "retried" and n}
    detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(causes.items()))
    return f"{sum(causes.values())}" + (f" ({detail})" if detail else "")


def leakage_table(datasets: Mapping[str, Mapping]) -> str:
    return to_markdown(leakage_rows(datasets))


def leakage_rows(datasets: Mapping[str, Mapping]) -> Table:
    """One row per dataset, from its metadata (a data/<method>.meta.json as a dict).

    Datasets without a teacher (sft) have no critiques and show dashes.
    """
    rows = []
    for label, meta in datasets.items():
        teacher = meta.get("teacher") or {}
        leak = meta.get("leakage") or {}
        median, mean = _coverage(leak.get("coverage"))
        cells = [
            label,
            teacher.get("teacher") or MISSING,
            teacher.get("reveal") or MISSING,
            _dropped(teacher.get("failures")),
            str(leak["n"]) if leak else MISSING,
            _stated(leak.get("answer_stated")),
            median,
            mean,
        ]
        rows.append(cells)
    caption = (
        "How much of the refined answer ŷ each training set's critiques hand over (docs/training.md): "
        "a CGD student trained on leaked critiques learns to copy from a context it never has at inference."
    )
    return Table(COLUMNS, rows, caption=caption)
