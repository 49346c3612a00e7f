"""`harness plan`: the statistical power of a profile's comparisons, before any compute."""

from __future__ import annotations

import typer


def plan_command(
    profile: str = typer.Option(
        "smoke", "--profile", "-p", help="smoke, cpu-small, paper, ci, or a YAML file."
    ),
    sets: list[str] | None = typer.Option(
        None, "--set", help="Override any profile key: --set eval.limit=100."
    ),
    effect: float = typer.Option(5.0, "--effect", help="Target effect in points for the 'n needed' columns."),
) -> None:
    """Print, per benchmark, n and the minimum detectable effect of the profile's comparisons."""
    from harness.config import resolve_config
    from harness.plan import plan_text

    config = resolve_config(profile, list(sets or []))
    text = plan_text(config, effect)
    typer.echo(f"profile {profile}: methods {', '.join(config['methods'])}\n{text}", nl=False)
