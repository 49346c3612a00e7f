"""Training step throughput: TRL's SFTTrainer (defaults made CPU-safe) against training/fast_sft.py.

Both train the same model on the same examples (by default the `sft` method's prompt-completion rows
built from MATH train problems; `--dataset` reads any method's built rows, e.g. a run's
data/cgd.jsonl), same seed, batch, learning rate and schedule; only the trainer class differs.
`fast-lora` is the project's step on a LoRA adapter (the train.lora defaults). Each run is its own
child process; the order alternates between repeats.

    .venv/bin/python perf/train_step.py            # batch 8 (TRL's default), 6 steps, 2 repeats
    .venv/bin/python perf/train_step.py --quick    # batch 4, 3 steps, 1 repeat
    .venv/bin/python perf/train_step.py --trainers trl-nockpt,fast   # TRL without checkpointing too
    .venv/bin/python perf/train_step.py --trainers trl,fast,fast-lora --dataset runs/<id>/data/cgd.jsonl
    .venv/bin/python perf/train_step.py --trainers fast --pack-tokens 1   # one row per forward, unpacked

Roofline: full fine-tuning costs 6 FLOP per parameter per token (forward 2, backward 4), so its
ceiling is the run's best fp32 matmul rate (1024^3, same threads) / (6 x parameters); the fraction
counts every token forwarded, prompt included. LoRA skips the weight gradients (about 4 FLOP per
parameter per token); its fraction is still printed against the full fine-tuning ceiling.

Tokens/s: non-padding tokens of the timed steps / their wall time; the first step (warm-up) is
not timed. "CPU-safe defaults": SFTConfig() with use_cpu=True and bf16=False (the project trains in
fp32); everything else, max_length=1024 included, stays TRL's default. `trl` keeps TRL's activation
checkpointing; the project's rows run without it, as cgd/train.py configures them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import add_common_args, matmul_rate, measure, set_up_parent  # benchmarks/ is the script's dir

TRAINERS = {
    "trl": "trl.SFTTrainer, CPU-safe defaults (activation checkpointing on, TRL's default)",
    "trl-nockpt": "trl.SFTTrainer, CPU-safe defaults and gradient_checkpointing=False",
    "fast": "training.fast_sft.FastSFTTrainer, CPU-safe defaults and gradient_checkpointing=False, as cgd/train.py runs it",
    "fast-lora": "training.fast_sft.FastSFTTrainer on a LoRA adapter (train.lora defaults: r 16, alpha 32, all-linear)",
}


def main() -> None:
    args = _parse()
    if args.child:
        return _child(args)
    set_up_parent(args)
    names = args.trainers.split(",")
    print(
        f"examples={args.examples} batch_size={args.batch_size} steps={args.steps} repeats={args.repeats} "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        flush=True,
    )
    argv = [
        "--model",
        args.model,
        "--examples",
        str(args.examples),
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        *(["--dataset", args.dataset] if args.dataset else []),
        *(["--pack-tokens", str(args.pack_tokens)] if args.pack_tokens else []),
    ]
    peaks = [matmul_rate(None)]

    def show(rep: int, name: str, out: dict) -> None:
        print(
            f"run {rep} {name:10s} tokens/s={out['tok_s']:7.1f} timed_tokens={out['tokens']:6d} "
            f"seconds={out['seconds']:7.1f} peak_rss={out['max_rss_mb']:6.0f} MB",
            flush=True,
        )
        peaks.append(matmul_rate(None))

    _summary(measure(__file__, names, args.repeats, argv, show), max(b for b, _ in peaks))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--examples", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8, help="TRL's default per-device batch")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument(
        "--dataset", default=None, help="a built dataset (runs/<id>/data/<method>.jsonl) instead of sft rows"
    )
    p.add_argument("--trainers", default="trl,fast", help=f"comma list of {', '.join(TRAINERS)}")
    p.add_argument("--quick", action="store_true", help="batch 4, 3 steps, 1 repeat")
    p.add_argument(
        "--pack-tokens",
        type=int,
        default=0,
        help="the project's token budget per packed forward (FastSFTTrainer.pack_tokens; 1: one row per forward)",
    )
    args = p.parse_args()
    if args.quick:
        args.batch_size, args.steps, args.repeats = 4, 3, 1
    unknown = set(args.trainers.split(",")) - set(TRAINERS)
    if unknown or "fast" not in args.trainers.split(","):
        p.error(f"--trainers: a comma list of {', '.join(TRAINERS)} that includes fast")
    return args


def _examples(n: int, dataset: str | None) -> list[dict]:
    from cgd.methods import sft
    from harness.paths import data_dir

    if dataset:
        return [json.loads(line) for _, line in zip(range(n), Path(dataset).open())]

    root = data_dir() or Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(root) / "math_train" / "math_train_12k_prm800k_split.jsonl"
    rows = [json.loads(line) for _, line in zip(range(n), path.open())]
    return sft([{"question": r["problem"], "solution": r["solution"]} for r in rows], seed=0)


def _child(args) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from harness.models import resolve_model
    from training.fast_sft import FastSFTTrainer

    model, tokenizer = resolve_model(args.model).load(dtype=torch.float32)
    model.train()
    dataset = Dataset.from_list(_examples(args.examples, args.dataset))
    params = model.num_parameters()
    steps: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            steps.append(time.perf_counter() - self.started)

    with tempfile.TemporaryDirectory() as tmp:
        # The project's trainer runs without checkpointing (cgd/train.py): it would recompute the forward.
        no_checkpointing = {} if args.child == "trl" else {"gradient_checkpointing": False}
        config = SFTConfig(
            output_dir=tmp,
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=0,
            **no_checkpointing,
        )
        cls = FastSFTTrainer if args.child.startswith("fast") else SFTTrainer
        if args.pack_tokens:
            FastSFTTrainer.pack_tokens = args.pack_tokens
        lora = {}
        if args.child == "fast-lora":
            from training.train_config import TrainConfig
            from training.trainer import lora_config

            lora = {"peft_config": lora_config(TrainConfig())}
        trainer = cls(
            **lora,
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[StepTimer()],
        )
        trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    tokens = [int(e["num_tokens"]) for e in logs]
    per_step = [b - a for a, b in zip([0] + tokens, tokens)]
    timed_tokens, timed_seconds = sum(per_step[1:]), sum(steps[1:])
    json.dump(
        {
            "trainer": args.child,
            "loss": [e["loss"] for e in logs],
            "step_tokens": per_step,
            "step_seconds": steps,
            "tokens": timed_tokens,
            "seconds": timed_seconds,
            "tok_s": timed_tokens / timed_seconds,
            "parameters": params,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
        open(args.out, "w"),
    )


def _summary(runs: dict[str, list[dict]], best_rate: float) -> None:
    medians = {n: statistics.median(r["tok_s"] for r in runs[n]) for n in runs}
    params = runs["fast"][0]["parameters"]
    roofline = best_rate / (6 * params / 1e9)
    print(
        f"\nfull fine-tuning roofline: 6 x {params / 1e6:.1f}M = {6 * params / 1e9:.3f} GFLOP/token; fp32 matmul best "
        f"{best_rate:.1f} GFLOP/s -> {roofline:.0f} tokens/s"
    )
    for n in runs:
        each = ", ".join(f"{r['tok_s']:.1f}" for r in runs[n])
        rss = max(r["max_rss_mb"] for r in runs[n])
        print(
            f"{n:10s} median tokens/s {medians[n]:6.1f} (runs: {each})  roofline fraction "
            f"{medians[n] / roofline:.1%}  peak RSS {rss:.0f} MB  [{TRAINERS[n]}]"
        )
    fast = runs["fast"][0]
    for ref in (n for n in runs if n != "fast"):
        ratios = [f["tok_s"] / t["tok_s"] for f, t in zip(runs["fast"], runs[ref])]
        print(
            f"ratio fast / {ref}: {medians['fast'] / medians[ref]:.2f}x of medians; per repeat "
            f"{', '.join(f'{r:.2f}x' for r in ratios)}"
        )
        if ref == "fast-lora":  # another model (an adapter): its losses are not TRL's to match
            continue
        other = runs[ref][0]
        print(f"step  tokens  loss({ref})  loss(fast)  diff")
        for i, (a, b, n) in enumerate(zip(other["loss"], fast["loss"], other["step_tokens"]), 1):
            print(f"{i:4d}  {n:6d}  {a:9.5f}  {b:10.5f}  {b - a:+.2e}")
        print(
            f"same tokens per step: {other['step_tokens'] == fast['step_tokens']}; max |loss diff| "
            f"{max(abs(a - b) for a, b in zip(other['loss'], fast['loss'])):.2e}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
