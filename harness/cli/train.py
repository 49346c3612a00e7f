"""`harness train`: SFT on one method's dataset (TRL), with a budget shared by all methods of a run."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli import common


def train(
    method: str = typer.Option(
        ...,
        "--method",
        help="Method(s) to train, comma-separated; each needs its "
        "dataset from `harness data build` in the run dir.",
    ),
    run_dir: Path = typer.Option(..., "--run-dir", help="The run directory of `harness data build`."),
    model: str = common.ModelOpt,
    max_steps: int = typer.Option(
        8, "--max-steps", min=1, help="Optimizer steps (the same for every method)."
    ),
    lr: float = typer.Option(1e-5, "--lr", help="Peak learning rate."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Examples per step per device."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Gradient accumulation steps."),
    max_length: int = typer.Option(
        1024, "--max-length", min=16, help="Tokens per example (prompt + completion)."
    ),
    lr_scheduler: str = typer.Option(
        "cosine", "--lr-scheduler", help="linear, cosine, constant, constant_with_warmup."
    ),
    warmup: float = typer.Option(
        0.0, "--warmup", min=0.0, help="Warm-up: a fraction (<1) or a number of steps."
    ),
    weight_decay: float = typer.Option(0.0, "--weight-decay", min=0.0),
    lora: bool = typer.Option(False, "--lora/--full", help="Train a LoRA adapter instead of all weights."),
    lora_r: int = typer.Option(16, "--lora-r", min=1),
    lora_alpha: int = typer.Option(32, "--lora-alpha", min=1),
    lora_dropout: float = typer.Option(0.0, "--lora-dropout", min=0.0),
    lora_targets: str = typer.Option(
        "all-linear", "--lora-targets", help="all-linear or comma-separated modules."
    ),
    seed: int = common.SeedOpt,
    select: str = typer.Option(
        "last",
        "--select",
        help="last (the weights after --max-steps) or best-val (the checkpoint with the best "
        "validation accuracy; cgd/selection.py).",
    ),
    eval_every: int = typer.Option(
        0, "--eval-every", min=0, help="Steps between validation checkpoints; 0: only the final one."
    ),
) -> None:
    """Fine-tune MODEL on each METHOD's dataset; a method already trained with the same inputs is skipped."""
    from cgd.methods import parse_methods
    from cgd.train import TrainConfig, check_matched_budget, train_method
    from harness import distributed
    from harness.run import RunDir

    cfg = TrainConfig(
        model=model,
        max_steps=max_steps,
        learning_rate=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_length=max_length,
        seed=seed,
        lr_scheduler=lr_scheduler,
        warmup=warmup,
        weight_decay=weight_decay,
        lora=lora,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_targets=lora_targets,
        select=select,
        eval_every=eval_every,
    )
    for name in parse_methods(method):
        s = train_method(run_dir, name, cfg)
        if not distributed.is_main():
            continue
        typer.echo(
            f"{name:<18} steps={s['steps']} global_batch={s.get('global_batch')} tokens={s['tokens_trained']} "
            f"completion_tokens={s['completion_tokens']} final_loss={s['final_loss']:.4f} "
            f"wall={s['wall_seconds']:.1f}s -> {run_dir / 'train' / name}"
        )
    check_matched_budget(RunDir(run_dir))
