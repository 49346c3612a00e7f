"""`harness train`: SFT on one method's dataset (TRL), with a budget shared by all methods of a run."""

from __future__ import annotations

from pathlib import Path

import typer

from harness_app.cli import common
from training.train_config import TrainConfig


def train(
    method: str = typer.Option(
        ...,
        "--method",
        help="Method(s) to train, comma-separated; each needs its "
        "dataset from `harness data build` in the run dir.",
    ),
    run_dir: Path = typer.Option(..., "--run-dir", help="The run directory of `harness data build`."),
    model: str = common.ModelOpt,
    max_steps: int = common.field_option(TrainConfig, "max_steps", "--max-steps"),
    learning_rate: float = common.field_option(TrainConfig, "learning_rate", "--lr"),
    batch_size: int = common.field_option(TrainConfig, "batch_size", "--batch-size"),
    grad_accum: int = common.field_option(TrainConfig, "grad_accum", "--grad-accum"),
    max_length: int = common.field_option(TrainConfig, "max_length", "--max-length"),
    lr_scheduler: str = common.field_option(TrainConfig, "lr_scheduler", "--lr-scheduler"),
    warmup: float = common.field_option(TrainConfig, "warmup", "--warmup"),
    weight_decay: float = common.field_option(TrainConfig, "weight_decay", "--weight-decay"),
    lora: bool = common.field_option(TrainConfig, "lora", "--lora/--full"),
    lora_r: int = common.field_option(TrainConfig, "lora_r", "--lora-r"),
    lora_alpha: int = common.field_option(TrainConfig, "lora_alpha", "--lora-alpha"),
    lora_dropout: float = common.field_option(TrainConfig, "lora_dropout", "--lora-dropout"),
    lora_targets: str = common.field_option(TrainConfig, "lora_targets", "--lora-targets"),
    seed: int = common.SeedOpt,
    select: str = common.field_option(TrainConfig, "select", "--select"),
    eval_every: int = common.field_option(TrainConfig, "eval_every", "--eval-every"),
    precision: str = common.field_option(TrainConfig, "precision", "--precision"),
    report_to: str = common.field_option(TrainConfig, "report_to", "--report-to"),
) -> None:
    """Fine-tune MODEL on each METHOD's dataset; a method already trained with the same inputs is skipped."""
    from cgd.methods import parse_methods
    from cgd.train import check_matched_budget, train_method
    from harness import distributed, layout
    from harness.run import RunDir

    cfg = TrainConfig(
        model=model,
        max_steps=max_steps,
        learning_rate=learning_rate,
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
        precision=precision,
        report_to=report_to,
    )
    for name in parse_methods(method):
        s = train_method(run_dir, name, cfg)
        if not distributed.is_main():
            continue
        typer.echo(
            f"{name:<18} steps={s['steps']} global_batch={s.get('global_batch')} tokens={s['tokens_trained']} "
            f"completion_tokens={s['completion_tokens']} final_loss={s['final_loss']:.4f} "
            f"wall={s['wall_seconds']:.1f}s -> {run_dir / layout.train_dir(name)}"
        )
    check_matched_budget(RunDir(run_dir))
