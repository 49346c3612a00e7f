"""`harness analyze RUN`: refinement uncertainty of base and every trained model (docs/analysis.md)."""

from __future__ import annotations

from pathlib import Path

import typer


def analyze_command(
    run_dir: Path = typer.Argument(..., help="A compare run directory (runs/<run-id>)."),
) -> None:
    """Entropy and NLL of the teacher's refined answers, given x and given (x, y', c), per model."""
    from cgd.uncertainty import SUMMARY, analyze, summary_lines

    _annotate_older_run(run_dir)
    summary = analyze(run_dir)
    typer.echo("\n".join(summary_lines(summary)))
    typer.echo(f"analysis: {run_dir / SUMMARY}")


def _annotate_older_run(run_dir: Path) -> None:
    """A compare run from before the validation split was annotated: annotate it now, as compare would."""
    from cgd.val_annotations import VAL_ANNOTATIONS, annotate_val
    from harness import layout
    from harness.io import read_json
    from harness.run import RunDir
    from harness_app.run_config import from_record

    if (run_dir / VAL_ANNOTATIONS).exists() or not (run_dir / layout.CONFIG).exists():
        return  # analyze() says what is missing, in one line
    config = from_record(read_json(run_dir / layout.CONFIG))
    if config.uncertainty_wanted() and (run_dir / layout.VAL_PROBLEMS).exists():
        annotate_val(RunDir(run_dir), config.build_config())
