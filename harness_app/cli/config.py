"""`harness config`: a profile's resolved configuration, every key with its value and its help."""

from __future__ import annotations

import typer

from harness_app.cli import common


def config_command(profile: str = common.ProfileOpt, sets: list[str] | None = common.SetOpt) -> None:
    """Print the resolved config of PROFILE (with --set applied) as commented YAML, and check it."""
    from harness.config import describe
    from harness_app.run_config import resolve

    config = resolve(profile, list(sets or []))
    typer.echo(f"# harness compare --profile {profile}: run id {config.run_id()}")
    typer.echo(describe(config), nl=False)
