"""Where a `harness compare` run's wall time went, stage by stage, from its manifest.

    .venv/bin/python perf/stages.py runs/<run-id>
    .venv/bin/python perf/stages.py runs/<run-id> --time-report   # also the report stage, rebuilt here

Reads only `manifest.json` (each stage's recorded wall seconds) and `eval/<label>/results.json` files
(seconds per benchmark), so it works on any finished or interrupted run, here or copied from elsewhere.
A resumed run shows the wall time of the run that did each stage. The report is not a manifest
stage (it is rebuilt whole from the run each time), so `--time-report` rebuilds it into a temporary
directory and times that. Profiles are sized from this table
(docs/performance.md, docs/findings.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

# Stage name prefix -> the group it is reported under, in pipeline order.
GROUPS = (
    ("problems", "data"),
    ("probe", "probe"),
    ("teach", "teach"),
    ("build", "build"),
    ("train", "train"),
    ("eval", "evaluate"),
    ("track", "track"),
    ("analysis", "analyse"),
)


def group_of(stage: str) -> str:
    head = stage.split(":")[0]
    return next((group for prefix, group in GROUPS if head == prefix), head)


def rows(run: Path) -> list[tuple[str, str, float]]:
    """(group, stage, seconds) per recorded stage, evaluation split per benchmark when recorded."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for stage, record in manifest["stages"].items():
        info = record.get("info") or {}
        by_task = info.get("wall_seconds_by_task") or {}
        if by_task:
            out += [(group_of(stage), f"{stage} {task}", float(s)) for task, s in by_task.items()]
            rest = float(info.get("wall_seconds", 0.0)) - sum(map(float, by_task.values()))
            if rest > 0.5:
                out.append((group_of(stage), f"{stage} (load, write)", rest))
        else:
            out.append((group_of(stage), stage, float(info.get("wall_seconds", 0.0))))
    order = [group for _, group in GROUPS]
    return sorted(out, key=lambda row: order.index(row[0]) if row[0] in order else len(order))


def report_row(run: Path) -> tuple[str, str, float]:
    import tempfile
    import time

    from harness_app.report.build import write_report

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_report(run, Path(tmp))
        return ("report", "report (rebuilt by this script)", time.perf_counter() - started)


def table(run: Path, time_report: bool = False) -> str:
    found = rows(run) + ([report_row(run)] if time_report else [])
    total = sum(s for _, _, s in found) or 1.0
    by_group: dict[str, float] = defaultdict(float)
    for group, _, seconds in found:
        by_group[group] += seconds
    lines = ["| stage | wall (s) | share |", "|---|---:|---:|"]
    lines += [f"| {stage} | {s:,.1f} | {100 * s / total:.1f} % |" for _, stage, s in found]
    lines += ["", "| group | wall (s) | share |", "|---|---:|---:|"]
    lines += [f"| {g} | {s:,.1f} | {100 * s / total:.1f} % |" for g, s in by_group.items()]
    lines.append(f"| **all** | **{total:,.1f}** ({total / 60:.1f} min) | 100 % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a compare run directory (runs/<run-id>)")
    parser.add_argument("--time-report", action="store_true", help="rebuild the report and time it too")
    args = parser.parse_args(argv)
    if not (args.run / "manifest.json").exists():
        print(f"error: {args.run}: no manifest.json (not a run directory?)", file=sys.stderr)
        return 2
    print(table(args.run, args.time_report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
