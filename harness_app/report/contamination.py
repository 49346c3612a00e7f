"""The report's contamination section: which test items share a 13-gram with the run's training text.

One row per (benchmark, source) with any overlap: training problems, the student's attempts, the
teacher's critiques and refined answers (harness/contamination.py has the rule). Pairs without
overlap are counted in the caption, not listed. Item ids only: never an item's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.contamination import SOURCES, Overlap, check_run, index_items
from harness.errors import HarnessError
from harness.io import to_csv
from harness.rundata import RunData
from harness_app.report.tables import Table

COLUMNS = ["benchmark", "source", "test items with overlap", "source rows with overlap", "test item ids"]
CSV_COLUMNS = [
    "benchmark",
    "source",
    "test_items",
    "items_with_overlap",
    "source_rows",
    "rows_with_overlap",
    "item_ids",
]
_SHOWN_IDS = 8


@dataclass(frozen=True)
class Contamination:
    table: Table | None  # None: nothing overlaps (the note says what was checked)
    note: str
    csv: str


def _share(k: int, n: int) -> str:
    return f"{k} of {n} ({100 * k / n:.1f}%)" if n else f"{k} of 0"


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f", … (+{len(ids) - _SHOWN_IDS})" if len(ids) > _SHOWN_IDS else "")


def from_overlaps(overlaps: list[Overlap]) -> Contamination:
    hits = [o for o in overlaps if o.items]
    sources = sorted({o.source for o in overlaps}, key=list(SOURCES).index)
    benchmarks = list(dict.fromkeys(o.benchmark for o in overlaps))
    note = (
        f"13-gram overlap (lm-eval's decontamination rule) between the full test sets of "
        f"{len(benchmarks)} benchmarks and {', '.join(sources) or 'no source'}: "
        f"{len(hits)} of {len(overlaps)} (benchmark, source) pairs overlap"
        + ("." if hits else ", so no table.")
        + " data.decontaminate=true drops overlapping training problems before training."
    )
    rows = [
        [
            o.benchmark,
            o.source,
            _share(len(o.items), o.test_items),
            _share(len(o.rows), o.source_rows),
            _ids(o.items),
        ]
        for o in hits
    ]
    csv_rows = [
        [o.benchmark, o.source, o.test_items, len(o.items), o.source_rows, len(o.rows), " ".join(o.items)]
        for o in overlaps
    ]
    table = Table(COLUMNS, rows, caption=note) if rows else None
    return Contamination(table, note, to_csv(CSV_COLUMNS, csv_rows))


def section(run: RunData) -> Contamination | None:
    """The run's contamination table; None when the run has no training text to check."""
    if not any((run.root / path).is_file() for path, _ in SOURCES.values()):
        return None
    try:
        index = index_items(run.tasks)
    except HarnessError as exc:
        note = f"Contamination not checked: a benchmark's test set could not be loaded ({exc})."
        return Contamination(None, note, to_csv(CSV_COLUMNS, []))
    return from_overlaps(check_run(run.root, index))
