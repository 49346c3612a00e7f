"""`harness eval`: score one model on the benchmarks."""
from __future__ import annotations

from pathlib import Path

import typer

from harness.benchmarks import DEFAULT_MATH_GRADER
from harness.checkers.reasoning import DEFAULT_END_MARKER
from harness.cli import common


def eval_command(
    model: str = common.ModelOpt,
    benchmarks: str = common.BenchmarksOpt,
    limit: int | None = common.LimitOpt,
    output: Path | None = common.OutputOpt,
    backend: str = common.BackendOpt,
    seed: int = common.SeedOpt,
    max_new_tokens: int | None = common.MaxNewTokensOpt,
    batch_size: int = common.BatchSizeOpt,
    truthfulqa_version: str = typer.Option("2021", help="TruthfulQA release: 2021 (817 q, published numbers) or 2025 (790 q)."),
    gpqa_seed: int = typer.Option(0, help="Seed of GPQA's option shuffle."),
    label: str | None = typer.Option(None, help="Name of this model in the run directory (default: the model name)."),
    math_grader: str = typer.Option(DEFAULT_MATH_GRADER, help="Math grader: math-verify, qwen (Qwen2.5-Math's math_equal) or both."),
    reasoning_end: str = typer.Option(DEFAULT_END_MARKER, help="End of a reasoning model's thinking; checkers score the text after it ('' = off)."),
) -> None:
    """Score MODEL on AMC23, MATH-500, AIME24, HumanEval, GPQA-Diamond, IFEval and TruthfulQA."""
    from harness.evaluate import run_eval

    run_eval(model=model, benchmarks=benchmarks, limit=limit, run_dir=common.new_run_dir(label or model, output),
             backend=backend, seed=seed, max_new_tokens=max_new_tokens, batch_size=batch_size,
             truthfulqa_version=truthfulqa_version, gpqa_seed=gpqa_seed, label=label, math_grader=math_grader,
             reasoning_end=reasoning_end)
