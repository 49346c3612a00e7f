"""`harness eval`: score one model on the benchmarks."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harness import layout
from harness.checkers.reasoning import DEFAULT_END_MARKER
from harness.errors import HarnessError
from harness.registry import DEFAULT_MATH_GRADER
from harness_app.cli import common

if TYPE_CHECKING:
    from harness.shards import Shard


def eval_command(
    model: str = common.ModelOpt,
    benchmarks: str = common.BenchmarksOpt,
    limit: int | None = common.LimitOpt,
    output: Path | None = common.OutputOpt,
    backend: str = common.BackendOpt,
    seed: int = common.SeedOpt,
    max_new_tokens: int | None = common.MaxNewTokensOpt,
    batch_size: int = common.BatchSizeOpt,
    truthfulqa_version: str = typer.Option(
        "2021", help="TruthfulQA release: 2021 (817 q, published numbers) or 2025 (790 q)."
    ),
    gpqa_seed: int = typer.Option(0, help="Seed of GPQA's option shuffle."),
    label: str | None = typer.Option(
        None, help="Name of this model in the run directory (default: the model name)."
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="K/N: score only shard K (0-based) of N, items "
        "assigned by a hash of their id; give every shard the same --output, "
        "then `harness merge`.",
    ),
    tensor_parallel_size: int = typer.Option(
        1, "--tensor-parallel-size", min=1, help="vllm: GPUs per model."
    ),
    gpu_memory_utilization: float = typer.Option(
        0.85, "--gpu-memory-utilization", min=0.05, max=1.0, help="vllm: share of each GPU's memory to take."
    ),
    max_model_len: int | None = typer.Option(
        None,
        "--max-model-len",
        min=16,
        help="vllm: context length to size the KV cache for (default: the model's).",
    ),
    math_grader: str = typer.Option(
        DEFAULT_MATH_GRADER, help="Math grader: math-verify, qwen (Qwen2.5-Math's math_equal) or both."
    ),
    reasoning_end: str = typer.Option(
        DEFAULT_END_MARKER,
        help="End of a reasoning model's thinking; checkers score the text after it ('' = off).",
    ),
    quantize: str = typer.Option(
        "none",
        help="hf backend: none, bf16 or int8 matmuls in the continuous engine (faster; changes the numbers).",
    ),
) -> None:
    """Score MODEL on AMC23, MATH-500, AIME24, HumanEval, GPQA-Diamond, IFEval and TruthfulQA.

    Under `torchrun` / `accelerate launch` each process scores its own shard and rank 0 merges them.
    """
    from harness import distributed
    from harness.eval_files import results_table
    from harness.shards import merge_label, parse_shard

    parsed = parse_shard(shard) if shard is not None else None
    if parsed is not None and output is None:
        raise HarnessError("--shard needs --output: every shard of a run writes into the same run directory")
    launched = distributed.world_size() > 1
    if launched:
        parsed = _launch_shard(parsed, output, backend)
    vllm = {
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_model_len,
    }
    run_dir = common.new_run_dir(label or model, output)
    payload = run_eval(
        model=model,
        benchmarks=benchmarks,
        limit=limit,
        run_dir=run_dir,
        backend=backend,
        seed=seed,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        truthfulqa_version=truthfulqa_version,
        gpqa_seed=gpqa_seed,
        label=label,
        shard=parsed,
        math_grader=math_grader,
        reasoning_end=reasoning_end,
        backend_options=vllm if backend == "vllm" else None,
        quantize=quantize,
    )
    if launched:
        distributed.barrier()
        if distributed.is_main():
            merged = merge_label(run_dir, payload["label"])
            typer.echo(results_table({payload["label"]: merged}))
            typer.echo(f"run directory: {run_dir}")


def _launch_shard(shard, output: Path | None, backend: str):
    """The shard of this process of the launch: the launch splits the items, one shard per process."""
    from harness import distributed
    from harness.shards import Shard

    if shard is not None:
        raise HarnessError(
            "--shard under a multi-process launch: the launch already gives each process a shard"
        )
    if output is None:
        raise HarnessError(
            "a multi-process launch needs --output: every process writes into the same run directory"
        )
    if backend == "vllm":
        raise HarnessError(
            "--backend vllm under torchrun / accelerate launch: start one `harness eval --shard K/N` "
            "process per vLLM replica instead (docs/scale-out.md)"
        )
    # Creating the process group now also puts each process on its own GPU before the model loads.
    distributed.barrier()
    return Shard(distributed.rank(), distributed.world_size())


def merge_command(
    run_dir: Path = typer.Argument(..., help="The --output of the `harness eval --shard K/N` runs."),
) -> None:
    """Merge the shards of every model in RUN_DIR into the files one unsharded `harness eval` writes."""
    from harness.shards import merge_shards

    for label in merge_shards(run_dir):
        typer.echo((run_dir / layout.eval_table(label)).read_text(encoding="utf-8"))
        typer.echo(f"merged: {run_dir / layout.eval_dir(label)}")


def run_eval(
    model: str,
    benchmarks: str,
    limit: int | None,
    run_dir: Path,
    backend: str = "hf",
    seed: int = 0,
    max_new_tokens: int | None = None,
    batch_size: int = 16,
    truthfulqa_version: str = "2021",
    gpqa_seed: int = 0,
    label: str | None = None,
    shard: Shard | None = None,
    backend_options: dict | None = None,
    math_grader: str = DEFAULT_MATH_GRADER,
    reasoning_end: str = DEFAULT_END_MARKER,
    quantize: str = "none",
) -> dict:
    """`harness eval`: resolve, evaluate, write the run directory, print the table."""
    from harness.backends import make_backend
    from harness.config import build
    from harness.eval_config import EvalConfig
    from harness.eval_files import results_table, write_run_config
    from harness.evaluate import evaluate_model

    cfg = build(
        EvalConfig,
        {
            "benchmarks": benchmarks,
            "limit": limit,
            "max_new_tokens": max_new_tokens,
            "truthfulqa_version": truthfulqa_version,
            "gpqa_seed": gpqa_seed,
            "math_grader": math_grader,
            "reasoning_end": reasoning_end,
            "vllm": backend_options or {},
            "quantize": quantize,
        },
        "eval.",
    )
    cfg.seed = seed
    options = cfg.backend_options(backend)
    if backend == "hf":
        options["batch_size"] = batch_size
    engine = make_backend(model, backend, **options)
    label = label or _label(model)
    model_info = {"name": model, "fingerprint": engine.fingerprint, "backend": backend}
    payload = evaluate_model(engine, model_info, cfg, run_dir / layout.EVAL, label, shard)
    if shard is not None:  # the shards of one run share its directory; the merge writes the rest
        typer.echo(f"{shard.name} of {label}: {run_dir / layout.shard_dir(label, shard.name)}")
        return payload
    write_run_config(run_dir, model_info, asdict(cfg))
    typer.echo(results_table({label: payload}))
    typer.echo(f"run directory: {run_dir}")
    return payload


def _label(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)
