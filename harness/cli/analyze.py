"""`harness analyze RUN`: refinement uncertainty of base and every trained model (docs/analysis.md)."""

from __future__ import annotations

from pathlib import Path

import typer


def analyze_command(
    run_dir: Path = typer.Argument(..., help="A compare run directory (runs/<run-id>)."),
) -> None:
    """Entropy and NLL of the teacher's refined answers, given x and given (x, y', c), per model."""
    from harness.uncertainty import SUMMARY, analyze, summary_lines

    summary = analyze(run_dir)
    typer.echo("\n".join(summary_lines(summary)))
    typer.echo(f"analysis: {run_dir / SUMMARY}")
