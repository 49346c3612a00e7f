"""Checkpoint selection on the validation split (`train.select`, `train.eval_every`).

`last` (the default) keeps the weights after `max_steps`: every method then gets exactly the same
budget. `best-val` saves a checkpoint every `eval_every` steps (and at the end), scores each on
problems/val.jsonl the way the math benchmarks score their items (the same chat prompt, greedy, the
same checker), and keeps the best one; the same rule picks for every method. The validation split
is held out from the training problems and is never a benchmark test set.

The curve [(step, accuracy, n, interval)] and the chosen step go into train/<label>/summary.json;
train/<label>/checkpoint/ then holds the chosen weights, which is what evaluation loads.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import layout
from harness.errors import HarnessError

log = logging.getLogger(__name__)

SELECT_RULES = ("last", "best-val")


@dataclass(frozen=True)
class ValConfig:
    """How a checkpoint is scored on the validation split: the math benchmarks' settings."""

    max_new_tokens: int = 512  # MATH-500's own budget (harness/registry.py) when eval sets none
    math_grader: str = "math-verify"
    reasoning_end: str = "</think>"
    backend: str = "hf"
    # The engine options evaluation gives this backend (EvalConfig.backend_options: eval.vllm's section
    # for vllm, the quantize mode for hf), so validation opens the engine as evaluation does.
    backend_options: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        if not self.backend_options:  # runs from before the field existed keep their stage keys
            out.pop("backend_options")
        return out


def check_rule(select: str, eval_every: int) -> None:
    if select not in SELECT_RULES:
        raise HarnessError(f"unknown train.select {select!r}; valid: {', '.join(SELECT_RULES)}")
    if eval_every < 0:
        raise HarnessError(f"train.eval_every must be >= 0 (0: only at the end), got {eval_every}")


def scores_validation(select: str, eval_every: int) -> bool:
    """`last` with eval_every > 0 still records the curve (informative); it just never departs from last."""
    return select == "best-val" or eval_every > 0


def save_steps(max_steps: int, eval_every: int) -> list[int]:
    """The steps whose weights are saved during training; the last is the final checkpoint itself."""
    if eval_every <= 0:
        return []
    return list(range(eval_every, max_steps, eval_every))


def step_dir(train_dir: Path, step: int) -> Path:
    return train_dir / layout.STEPS / layout.step_name(step)


def make_saver(trainer, train_dir: Path, steps: list[int]):
    """A TrainerCallback that saves the weights at `steps`. Every rank calls save_model (FSDP and
    ZeRO-3 gather the weights collectively); rank 0 alone writes, atomically."""
    from transformers import TrainerCallback

    from harness.io import atomic_write_dir

    wanted = set(steps)

    class SaveAtSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step not in wanted:
                return
            target = step_dir(train_dir, state.global_step)
            if trainer.is_world_process_zero():
                atomic_write_dir(target, lambda tmp: trainer.save_model(str(tmp)))
            else:
                trainer.save_model(str(target))

    return SaveAtSteps()


def val_request(question: str, max_new_tokens: int):
    """What a math benchmark sends for an item: its prompt as the one user turn of the chat template
    (lm-eval's apply_chat_template, which the backend's render reproduces), greedy."""
    from harness.backends.base import GenRequest
    from harness.registry import math_prompt

    return GenRequest(
        messages=({"role": "user", "content": math_prompt({"problem": question})},),
        max_new_tokens=max_new_tokens,
        temperature=0.0,
    )


def score_checkpoint(path: str | Path, problems: list[dict], val: ValConfig) -> dict:
    """Accuracy of one checkpoint on the validation problems, with its Clopper–Pearson interval."""
    from harness.backends import open_backend
    from harness.checkers.math import normalize_gold
    from harness.registry import score_math
    from harness.stats import score_interval

    with open_backend(str(path), val.backend, **val.backend_options) as backend:
        results = backend.generate([val_request(p["question"], val.max_new_tokens) for p in problems])
    correct = [
        score_math(
            {
                "gold": normalize_gold(p["answer"]),
                "math_grader": val.math_grader,
                "reasoning_end": val.reasoning_end,
            },
            r.text,
        )["exact_match"]
        for p, r in zip(problems, results)
    ]
    ci = score_interval(correct)
    return {"acc": ci.mean, "n": ci.n, "interval": [ci.low, ci.high], "correct": int(sum(correct))}


def choose(curve: list[dict]) -> int:
    """The step with the highest validation accuracy; ties go to the later step, so best-val departs
    from the matched budget only when validation strictly prefers an earlier checkpoint."""
    return max(curve, key=lambda point: (point["acc"], point["step"]))["step"]


def install(train_dir: Path, step: int, max_steps: int) -> None:
    """Make checkpoint/ hold step `step`'s weights (atomically), then drop the other candidates."""
    from harness.io import atomic_write_dir

    if step != max_steps:
        source = step_dir(train_dir, step)
        atomic_write_dir(
            train_dir / layout.CHECKPOINT_NAME, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True)
        )
    shutil.rmtree(train_dir / layout.STEPS, ignore_errors=True)


def select_checkpoint(
    train_dir: Path, problems: list[dict], select: str, eval_every: int, max_steps: int, val: ValConfig
) -> dict:
    """Score the saved checkpoints, put the chosen weights in checkpoint/, and return the summary fields."""
    final = train_dir / layout.CHECKPOINT_NAME
    candidates = {step: step_dir(train_dir, step) for step in save_steps(max_steps, eval_every)}
    candidates[max_steps] = final
    curve = []
    for step, path in sorted(candidates.items()):
        point = {"step": step, **score_checkpoint(path, problems, val)}
        log.info("validation: step %d acc %.3f (%d/%d)", step, point["acc"], point["correct"], point["n"])
        curve.append(point)
    chosen = choose(curve) if select == "best-val" else max_steps
    install(train_dir, chosen, max_steps)
    return {
        "select": select,
        "eval_every": eval_every,
        "selected_step": chosen,
        "validation": {"problems": len(problems), **val.as_dict()},
        "val_curve": curve,
    }
