"""Options shared by several commands, defined once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from harness.config import DEFAULT_PROFILE, available_profiles
from harness.defaults import DEFAULT_MODEL

ModelOpt = typer.Option(
    DEFAULT_MODEL,
    "--model",
    "-m",
    help=f"{DEFAULT_MODEL} (embedded), a local HF model dir, a PEFT adapter dir, or a Hub id.",
)
BackendOpt = typer.Option(
    "hf", "--backend", help="Generation backend: hf, vllm (GPU), openai:<base_url>#<model>."
)
BenchmarksOpt = typer.Option("all", "--benchmarks", "-b", help="Comma-separated benchmark names, or 'all'.")
LimitOpt = typer.Option(None, "--limit", "-l", min=1, help="Score only the first N items of each benchmark.")
OutputOpt = typer.Option(None, "--output", "-o", help="Run directory (default runs/<run-id>).")
SeedOpt = typer.Option(0, "--seed", help="Random seed (recorded in every artefact).")
MaxNewTokensOpt = typer.Option(None, "--max-new-tokens", min=1, help="Override every task's max new tokens.")
BatchSizeOpt = typer.Option(16, "--batch-size", min=1, help="Generation batch size.")


def field_option(cls: type, name: str, *flags: str):
    """A command-line option whose default, help and lower bound are the config field's own."""
    from harness.config import schema_keys

    key = next(k for k in schema_keys(cls).values() if k.path == name)
    extra = {"min": key.minimum} if key.minimum is not None and isinstance(key.default, (int, float)) else {}
    return typer.Option(key.default, *flags, help=key.help[:1].upper() + key.help[1:] + ".", **extra)


ProfileOpt = typer.Option(
    DEFAULT_PROFILE,
    "--profile",
    "-p",
    help=f"{', '.join(available_profiles())}, or a YAML file (`harness config` shows it).",
)
SetOpt = typer.Option(
    None,
    "--set",
    help="KEY=VALUE, repeatable: any key `harness config` lists, e.g. train.learning_rate=5e-5.",
)


def new_run_dir(prefix: str, output: Path | None) -> Path:
    if output is not None:
        return output
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', prefix)}"
