"""`harness config`: a profile's resolved configuration, every key with its value and its help."""

from __future__ import annotations

import typer

from cgd_harness.cli import common


def config_command(profile: str = common.ProfileOpt, sets: list[str] | None = common.SetOpt) -> None:
    """Print the resolved config of PROFILE (with --set applied) as commented YAML, and check it."""
    from cgd_harness.run_config import resolve
    from harness.config import describe

    config = resolve(profile, list(sets or []))
    typer.echo(f"# harness compare --profile {profile}: run id {config.run_id()}")
    typer.echo(describe(config), nl=False)
