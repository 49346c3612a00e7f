"""The trainer every training run uses: TRL's SFTTrainer with the fast CPU step, counting the tokens
in the loss and keeping a per-step log; its SFT and LoRA configs from a `TrainConfig`.

Nothing here knows a method or a run directory: the study's train stage (cgd/train.py) gives it the
examples and the output directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from harness import distributed
from harness.errors import HarnessError
from training import trackers
from training.fast_sft import FastSFTTrainer
from training.train_config import TrainConfig

log = logging.getLogger(__name__)


def global_batch(cfg: TrainConfig, processes: int) -> int:
    return cfg.batch_size * processes * cfg.grad_accum


def sft_config(cfg: TrainConfig, output_dir: Path, run_name: str | None = None):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        seed=cfg.seed,
        data_seed=cfg.seed,
        completion_only_loss=True,
        # fp32 by default: bf16 is slower on CPUs without bf16 units (docs/performance.md) and barely moves the loss.
        bf16=cfg.precision == "bf16",
        fp16=False,
        use_cpu=not torch.cuda.is_available(),
        # Recomputing activations costs a third more time; models trained here fit without it.
        gradient_checkpointing=False,  # the name in transformers 5.19 (vLLM 0.32's range); 5.23 keeps it as an alias
        report_to=trackers.resolve(cfg.report_to),
        run_name=run_name,
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
        # Every parameter takes part in every step (the fast step keeps even an unscored row on the
        # graph), so DDP need not search the graph for unused ones after each backward.
        ddp_find_unused_parameters=False,
        disable_tqdm=True,
    )


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    targets = cfg.lora_targets if cfg.lora_targets == "all-linear" else cfg.lora_targets.split(",")
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


class CountingTrainer(FastSFTTrainer):
    """The project's trainer (fast CPU step) that also counts the tokens in the loss and keeps a per-step log."""

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        distributed.engage_sharding(self.accelerator)  # FSDP on CPU processes, where accelerate leaves it out
        self.is_fsdp_enabled = getattr(self.accelerator.state, "fsdp_plugin", None) is not None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.completion_tokens_seen = 0  # tokens with a label, i.e. in the loss
        self.steps_log: list[dict] = []

    @property
    def tokens_seen(self) -> int:
        """Non-padding prompt + completion tokens, all ranks: TRL's own `num_tokens` count."""
        return self._total_train_tokens

    def training_step(self, model, inputs, num_items_in_batch=None):
        scored = self.accelerator.reduce((inputs["labels"] != -100).sum(), reduction="sum")
        self.completion_tokens_seen += int(scored)
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs, start_time=None):
        if "loss" in logs:
            self.steps_log.append(
                {
                    "step": self.state.global_step,
                    "loss": float(logs["loss"]),
                    "tokens": self.tokens_seen,
                    "completion_tokens": self.completion_tokens_seen,
                    "learning_rate": logs.get("learning_rate"),
                }
            )
        super().log(logs, start_time)


def make_trainer(
    model, tokenizer, examples: list[dict], cfg: TrainConfig, output_dir: Path, run_name: str | None = None
):
    """The trainer every method uses; `examples` are TRL conversational prompt-completion rows."""
    from datasets import Dataset

    if not getattr(tokenizer, "chat_template", None):
        raise HarnessError(
            f"the tokenizer of {cfg.model} has no chat template; the conversational "
            "training examples need one"
        )

    dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    return CountingTrainer(
        model=model,
        args=sft_config(cfg, output_dir, run_name),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(cfg) if cfg.lora else None,
    )


def library_versions() -> dict:
    import peft
    import torch
    import transformers
    import trl

    return {
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch": torch.__version__,
    }


def warn_on_padded_batches(trainer, cfg: TrainConfig, label: str) -> None:
    """With several processes, accelerate fills an epoch's short last batch with examples from its start
    (even_batches), where one process trains on the short batch itself: the same global batch then
    differs at that step. Say so when the run reaches such a step."""
    processes = trainer.accelerator.num_processes
    used, batch = len(trainer.train_dataset), global_batch(cfg, processes)
    if processes > 1 and used % batch and cfg.max_steps * batch > used and trainer.is_world_process_zero():
        log.warning(
            "%s: %d examples are not a multiple of the global batch %d; the last batch of each epoch is "
            "padded with repeated examples, so those steps differ from a single-process run",
            label,
            used,
            batch,
        )
