"""`harness plan`: the statistical power of a profile's comparisons, before any compute."""

from __future__ import annotations

import typer

from harness_app.cli import common


def plan_command(
    profile: str = common.ProfileOpt,
    sets: list[str] | None = common.SetOpt,
    effect: float = typer.Option(5.0, "--effect", help="Target effect in points for the 'n needed' columns."),
) -> None:
    """Print, per benchmark, n and the minimum detectable effect of the profile's comparisons."""
    from cgd.hypotheses import HYPOTHESES
    from harness.plan import plan_text
    from harness_app.run_config import resolve

    config = resolve(profile, list(sets or []))
    text = plan_text(config.as_dict(), HYPOTHESES, effect)
    typer.echo(f"profile {profile}: methods {', '.join(config.methods)}\n{text}", nl=False)
