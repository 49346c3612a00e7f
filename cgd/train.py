"""One TRL SFTTrainer wrapper for every method: only the dataset differs between methods.

The step is training/fast_sft.py's: TRL's batches and loss, computed without padding or prompt logits.

Matched budget: every method of a run gets the same problems, the same number of optimizer steps
(`max_steps`, never epochs: the datasets' lengths differ in tokens), learning rate, schedule, batch,
max length and seed. The loss is on the completion only (TRL builds labels -100 on the prompt).
Under `accelerate launch` or `torchrun` every process trains on its share of each batch (DDP, or
FSDP / DeepSpeed ZeRO-3 from the launch config) and rank 0 alone writes. The budget that must match
across methods is the global batch, batch_size x processes x grad_accum: it is recorded in each
summary and checked across the methods of a run.
Writes under the run dir:
    train/<method>/checkpoint/   full model or LoRA adapter, with the tokenizer and its chat template
    train/<method>/log.jsonl     {"step", "loss", "tokens", "completion_tokens", "learning_rate"} per step
    train/<method>/summary.json  tokens trained, completion tokens, wall time, final loss, config, hashes
With `select: best-val` the checkpoint is the one training/selection.py picks on the validation split.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict
from pathlib import Path

import torch

from cgd import methods, prompts
from cgd.pipeline import VAL_PROBLEMS
from cgd.teachers.base import meta_path
from harness import distributed, layout
from harness.errors import HarnessError
from harness.io import (
    atomic_write_dir,
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_jsonl,
    stable_hash,
)
from harness.run import RunDir
from training import trackers
from training.selection import ValConfig, make_saver, save_steps, scores_validation, select_checkpoint
from training.train_config import TrainConfig
from training.trainer import global_batch, library_versions, make_trainer, warn_on_padded_batches


def check_matched_budget(run: RunDir) -> None:
    """Every trained label of the run must have seen the same global batch; the report compares them all."""
    seen = {}
    for summary_file in sorted(run.path(layout.TRAIN).glob(f"*/{layout.SUMMARY_NAME}")):
        summary = read_json(summary_file)
        batch, accum = summary["config"]["batch_size"], summary["config"]["grad_accum"]
        processes = summary.get("processes", 1)  # summaries older than the field were single-process
        seen[summary_file.parent.name] = (batch * processes * accum, batch, processes, accum)
    if len({gb for gb, *_ in seen.values()}) > 1:
        parts = ", ".join(
            f"{label} {gb} ({bs} x {p} process{'es' if p != 1 else ''} x {ga})"
            for label, (gb, bs, p, ga) in seen.items()
        )
        raise HarnessError(
            f"{run.root}: the methods compared trained with different global batches "
            f"(batch_size x processes x grad_accum): {parts}; retrain them with the same one"
        )


def train_method(
    run_dir: str | Path | RunDir,
    method: str,
    cfg: TrainConfig,
    label: str | None = None,
    val: ValConfig | None = None,
) -> dict:
    """Train one method on its dataset in the run dir; skipped when already done with the same inputs.

    `label` names the output dir train/<label>/ (default: the method), e.g. "cgd@seed1" when one
    method is trained once per seed. `val`: how checkpoints are scored on the validation split
    (the math benchmarks' settings; used when cfg.select / cfg.eval_every ask for it).
    """
    from harness.models import resolve_model

    label = label or method
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    methods.check_methods([method])
    data = run.path(layout.dataset(method))
    if not data.exists():
        raise HarnessError(
            f"{data}: no training data for method {method}; run `harness data build "
            f"--methods {method} --run-dir {run.root}` first"
        )
    distributed.check_engine()
    resolved = resolve_model(cfg.model)
    inputs = {
        "method": method,
        "dataset_hash": run.input_hash(layout.dataset(method)),  # checked against build:<method>
        # Where metrics are mirrored does not change the model: a new tracker must not retrain.
        "config": cfg.as_inputs(),
        "model": resolved.fingerprint,
        "versions": library_versions(),
    }
    processes = distributed.world_size()
    if processes > 1:  # a single process keeps the hash that runs recorded before launches existed
        inputs["processes"] = processes
    validate = scores_validation(cfg.select, cfg.eval_every)
    if validate:
        val = val or ValConfig()
        problems = read_jsonl(run.path(VAL_PROBLEMS)) if run.path(VAL_PROBLEMS).exists() else []
        if not problems:  # before training, not after it
            raise HarnessError(
                f"train.select={cfg.select} with eval_every={cfg.eval_every} needs validation problems "
                f"({run.path(VAL_PROBLEMS)} is empty or missing); set data.n_val > 0"
            )
        inputs["val"] = {**val.as_dict(), "problems": run.input_hash(VAL_PROBLEMS)}
    stage = f"train:{label}"
    inputs_hash = stable_hash(inputs)
    # Not run_stage: under `accelerate launch` every rank trains, but only rank 0 may write the manifest.
    if run.is_done(stage, inputs_hash):
        return read_json(run.path(layout.train_summary(label)))
    started = time.time()
    trainer, summary = _fit(run, method, cfg, resolved, inputs, label)
    main, steps_log = trainer.is_world_process_zero(), trainer.steps_log
    summary.update(select=cfg.select, selected_step=summary["steps"])
    if validate:
        # The candidates are on disk: free the training copy of the weights (and its optimizer
        # state) before each candidate is loaded for generation.
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if main:
            summary.update(
                select_checkpoint(
                    run.path(layout.train_dir(label)),
                    problems,
                    cfg.select,
                    cfg.eval_every,
                    cfg.max_steps,
                    val,
                )
            )
    summary["wall_seconds"] = round(time.time() - started, 3)
    if main:
        atomic_write_jsonl(run.path(layout.train_log(label)), steps_log)
        atomic_write_json(run.path(layout.train_summary(label)), summary)
        run.mark_done(
            stage,
            inputs_hash,
            [layout.checkpoint(label), layout.train_log(label), layout.train_summary(label)],
            {k: summary[k] for k in ("tokens_trained", "completion_tokens", "final_loss", "wall_seconds")},
        )
    # The next method's is_done check, on every rank, must see what rank 0 just recorded.
    distributed.barrier()
    return summary


def _fit(run: RunDir, method: str, cfg: TrainConfig, resolved, inputs: dict, label: str):
    data = run.path(layout.dataset(method))
    meta = read_json(meta_path(data)) if meta_path(data).exists() else {}
    examples = read_jsonl(data)
    model, tokenizer = resolved.load(dtype=torch.float32)
    checkpoint = run.path(layout.checkpoint(label))
    trainer = make_trainer(model, tokenizer, examples, cfg, checkpoint, f"{run.root.resolve().name}/{label}")
    trackers.attach(trainer, trackers.tensorboard_dir(run.root, label))
    if scores_validation(cfg.select, cfg.eval_every):
        trainer.add_callback(
            make_saver(trainer, run.path(layout.train_dir(label)), save_steps(cfg.max_steps, cfg.eval_every))
        )
    warn_on_padded_batches(trainer, cfg, label)
    trainer.train()
    sharding = distributed.parameter_shards(trainer.model, trainer.accelerator)
    # A PEFT model saves its adapter only. Every rank calls save_model; only rank 0 writes.
    if trainer.is_world_process_zero():
        atomic_write_dir(checkpoint, lambda tmp: trainer.save_model(str(tmp)))
    else:
        trainer.save_model(str(checkpoint))
    losses = [e["loss"] for e in trainer.steps_log]
    summary = {
        "method": method,
        "tokens_trained": trainer.tokens_seen,
        "completion_tokens": trainer.completion_tokens_seen,
        "final_loss": losses[-1] if losses else None,
        "first_loss": losses[0] if losses else None,
        "steps": trainer.state.global_step,
        "processes": trainer.accelerator.num_processes,
        "global_batch": global_batch(cfg, trainer.accelerator.num_processes),
        "sharding": sharding,
        "mixed_precision": trainer.accelerator.mixed_precision,
        "examples": len(examples),
        # TRL cuts examples at max_length and drops those left with no completion token.
        "examples_used": len(trainer.train_dataset),
        "examples_truncated": sum(len(ids) >= cfg.max_length for ids in trainer.train_dataset["input_ids"]),
        "teacher_tokens": meta.get("teacher_tokens", 0),
        "tracker": ",".join(trainer.args.report_to) or "none",
        "dataset_hash": inputs["dataset_hash"],
        "prompts_version": meta.get("prompts_version", prompts.PROMPTS_VERSION),
        "teacher": meta.get("teacher"),
        "model": {"name": resolved.name, "fingerprint": resolved.fingerprint},
        "chat_template_hash": stable_hash(tokenizer.chat_template)[:16],
        "versions": inputs["versions"],
        "config": asdict(cfg),
    }
    return trainer, summary
