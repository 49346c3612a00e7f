"""How much of CGD's target the critiques hand over, per dataset: a Markdown table.

The statistics are computed at build time (cgd/teachers/leakage.py) and stored in each dataset's
metadata (`data/<method>.meta.json`, key `leakage`); this module only formats them, so the report
needs neither the checker nor the rows. A pure function: wiring it into the page is the report's job.
"""

from __future__ import annotations

from collections.abc import Mapping

HEADER = (
    "| dataset | teacher | reveal | n | critiques stating the gold answer | "
    "ŷ covered by the critique's 6-grams: median | mean [95% CI] |"
)
RULE = "|---|---|---|---:|---|---:|---|"
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


def leakage_table(datasets: Mapping[str, Mapping]) -> str:
    """One row per dataset, from its metadata (a data/<method>.meta.json as a dict).

    Datasets without a teacher (sft) have no critiques and show dashes.
    """
    lines = [HEADER, RULE]
    for label, meta in datasets.items():
        teacher = meta.get("teacher") or {}
        leak = meta.get("leakage") or {}
        median, mean = _coverage(leak.get("coverage"))
        cells = [
            label,
            teacher.get("teacher") or MISSING,
            teacher.get("reveal") or MISSING,
            str(leak["n"]) if leak else MISSING,
            _stated(leak.get("answer_stated")),
            median,
            mean,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
