"""`harness report <run-dir>`: regenerate a run's report from its evaluation artefacts."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run_dir: Path = typer.Argument(..., help="Run directory (runs/<run-id>) with eval/<label>/ results."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Report directory [default: reports/<run-id>/]."
    ),
) -> None:
    """Write the report of a run: tables (md/csv/tex), report.html, plots, drift, per-item flips."""
    from cgd_harness.report.build import write_report

    out = output if output is not None else Path("reports") / run_dir.resolve().name
    written = write_report(run_dir, out)
    typer.echo(f"report: {len(written)} files in {out} (open {out / 'report.html'})")
