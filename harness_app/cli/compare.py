"""`harness compare`: train the methods side by side and score them against the base model."""

from __future__ import annotations

from pathlib import Path

import typer

from harness_app.cli import common


def compare_command(
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma-separated methods (overrides the profile): "
        "sft, distill-sft, cft, cgd, refine-nocritique, cgd-shuffled, cgd-generic.",
    ),
    profile: str = common.ProfileOpt,
    teacher: str | None = typer.Option(
        None, "--teacher", help="reference, openai:<base_url>#<model>, hf:<model>."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="The student (overrides the profile)."),
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated training seeds, e.g. 0,1,2."),
    limit: int | None = common.LimitOpt,
    sets: list[str] | None = common.SetOpt,
    output: Path | None = typer.Option(None, "--output", "-o", help="Run directory (default runs/<run-id>)."),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Report directory (default reports/<run-id>)."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the resolved plan (stages, models, GPUs, items "
        "per benchmark) and stop; nothing runs or is written.",
    ),
) -> None:
    """Build critique data, train each method with a matched budget, evaluate base + variants, write the report."""
    from harness import distributed
    from harness_app.compare import compare
    from harness_app.report.sections import without_config
    from harness_app.run_config import resolve

    overrides = [
        f"{k}={v}"
        for k, v in (
            ("methods", methods),
            ("teacher.model", teacher),
            ("model", model),
            ("seeds", seeds),
            ("eval.limit", limit),
        )
        if v is not None
    ]
    config = resolve(profile, overrides + list(sets or []))  # every value checked before any stage runs
    if dry_run:
        from harness_app.dryrun import plan_lines

        typer.echo("\n".join(plan_lines(config, output)))
        return
    out = compare(config, output=output, report_dir=report_dir)
    if not distributed.is_main():
        return
    for name in ("table.md", "findings.md"):  # the findings last: what a reader sees when it ends
        if (out / name).exists():
            typer.echo(without_config((out / name).read_text(encoding="utf-8")))
    typer.echo(f"report: {out}")
