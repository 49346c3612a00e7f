"""`harness report <run-dir> [<run-dir> ...]`: regenerate a run's report from its evaluation artefacts,
or put several runs' variants side by side in one report (harness_app/report/crossrun.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run_dirs: list[Path] = typer.Argument(
        ...,
        help="Run directory (runs/<run-id>) with eval/<label>/ results; several: one report of them all, "
        "each run's models named after the config keys the runs differ in.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Report directory [default: reports/<run-id>/, reports/cross-<ids>/]."
    ),
) -> None:
    """Write the report of a run: tables (md/csv/tex), report.html, plots, drift, per-item flips."""
    if len(run_dirs) == 1:
        from harness_app.report.build import write_report

        out = output if output is not None else Path("reports") / run_dirs[0].resolve().name
        written = write_report(run_dirs[0], out)
    else:
        from harness_app.report.build import write_cross_report

        name = "cross-" + "-".join(d.resolve().name for d in run_dirs)
        out = output if output is not None else Path("reports") / name[:100]
        written = write_cross_report(run_dirs, out)
    typer.echo(f"report: {len(written)} files in {out} (open {out / 'report.html'})")
