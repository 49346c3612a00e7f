"""The `train:` section of a run's config, apart from cgd/train.py so reading a config never imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.config import setting
from harness.defaults import DEFAULT_MODEL
from harness.errors import HarnessError
from training import trackers
from training.selection import SELECT_RULES, check_rule, scores_validation
from training.trackers import TRACKERS

LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """The `train:` section. Defaults are TRL SFTConfig's where both have the setting, except: max_steps
    (TRL trains epochs; a matched budget needs equal steps), learning_rate (1e-5, TRL 2e-5: a 135M model
    at a few steps diverges above it), batch_size (4, TRL 8), max_length (768, TRL 1024: fits the
    smoke problems on a laptop), lr_scheduler (cosine, TRL linear)."""

    model: str = setting(DEFAULT_MODEL, "the student (the run's top-level model)", key=False)
    max_steps: int = setting(4, "optimizer steps: the matched budget, the same for every method", minimum=1)
    learning_rate: float = setting(1.0e-5, "peak learning rate (AdamW)", minimum=0.0)
    batch_size: int = setting(4, "examples per step per process", minimum=1)
    grad_accum: int = setting(1, "gradient accumulation steps", minimum=1)
    max_length: int = setting(
        768, "tokens per example, prompt + completion; longer ones are truncated", minimum=16
    )
    seed: int = setting(0, "the seed of this training run (one of the run's seeds)", key=False)
    lr_scheduler: str = setting("cosine", "learning-rate schedule", choices=LR_SCHEDULERS)
    warmup: float = setting(0.0, "warm-up: < 1 a fraction of max_steps, >= 1 a number of steps", minimum=0.0)
    weight_decay: float = setting(0.0, "AdamW weight decay", minimum=0.0)
    lora: bool = setting(False, "train a LoRA adapter instead of all weights")
    lora_r: int = setting(16, "LoRA rank", minimum=1)
    lora_alpha: int = setting(32, "LoRA alpha (scale = alpha / r)", minimum=1)
    lora_dropout: float = setting(0.0, "LoRA dropout", minimum=0.0)
    lora_targets: str = setting("all-linear", "all-linear or comma-separated module names")
    select: str = setting(
        "last",
        "which checkpoint is the model: last (matched budgets) | best-val (the best on problems/val.jsonl "
        "by the math checker, the same rule for every method; training/selection.py)",
        choices=SELECT_RULES,
    )
    eval_every: int = setting(
        0, "steps between checkpoints scored on the validation split; 0: only the final one", minimum=0
    )
    precision: str = setting(
        "fp32",
        "fp32 | bf16: bf16 mixed precision (fp32 weights and AdamW state, bf16 autocast in forward and "
        "backward), as GPU runs of the paper train; fp32 is faster on CPUs without bf16 units",
        choices=PRECISIONS,
    )
    report_to: str = setting(
        "auto",
        "experiment tracker for the training steps and, in compare, each evaluation's summary: auto "
        "(tensorboard, offline into <run>/tensorboard/, when installed; else none) | none | tensorboard "
        "| wandb | trackio | mlflow; never part of a training or evaluation stage's inputs",
        choices=TRACKERS,
    )

    def __post_init__(self):
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1 or self.max_length < 16:
            raise HarnessError("max_steps, batch_size and grad_accum must be >= 1 and max_length >= 16")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise HarnessError(
                f"unknown lr scheduler {self.lr_scheduler!r}; valid: {', '.join(LR_SCHEDULERS)}"
            )
        if self.precision not in PRECISIONS:
            raise HarnessError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        check_rule(self.select, self.eval_every)
        trackers.resolve(self.report_to)  # a named tracker that is not installed fails before any stage

    def as_inputs(self) -> dict:
        """The config as stage inputs: the tracker never, the selection keys only when they score
        anything and the precision only when it is not fp32, so runs trained before they existed
        (select=last, no validation, fp32) keep their hash."""
        config = asdict(self)
        del config["report_to"]
        if self.precision == "fp32":
            del config["precision"]
        if not scores_validation(self.select, self.eval_every):
            del config["select"], config["eval_every"]
        return config
