"""bf16 mixed-precision training, as the paper profile's GPUs run it, exercised on a CPU with bf16 units."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cgd import methods
from training.train_config import TrainConfig
from training.trainer import make_trainer, sft_config

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "cases" / "methods_fixture.jsonl"
ARGS = dict(max_steps=3, learning_rate=1e-3, batch_size=2, max_length=512, lr_scheduler="constant")
U_BF16 = 2.0**-8  # unit roundoff of bf16: 8 significant bits, round to nearest


def cpu_has_bf16_units() -> bool:
    """AVX-512 BF16 or AMX-BF16 (Intel with AMX; AMD EPYC has AVX-512 BF16 and no AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


needs_bf16 = pytest.mark.skipif(
    not torch.cuda.is_available() and not cpu_has_bf16_units(),
    reason="no bf16 units on this CPU (AVX-512 BF16 / AMX-BF16); bf16 would run emulated",
)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from harness.models import resolve_model

    return resolve_model(str(tiny_model))


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()][:2]
    return methods.build_examples("sft", rows)


def loss_bound(model, tokenizer, examples: list[dict]) -> float:
    """First-order bound on |loss(bf16 autocast) - loss(fp32)| at the same weights.

    The token loss lse(z) - z_y moves by at most 2 max|dz| (its gradient in the logits z has l1 norm
    <= 2). Each bf16 rounding perturbs a value by at most u relative, and a logit z_v = sum_i W_vi h_i
    computed from perturbed factors moves by at most (rounds) u sum_i |W_vi h_i|. Along the way to the
    logits a value is rounded at most 2 + 16 L times: the head's two operands, and per decoder layer the
    operands and outputs of its 7 projections, RoPE and attention. So |dloss| <= 2 (2 + 16 L) u S with
    S = max over tokens and vocabulary of sum_i |W_vi| |h_i|, measured here on the fp32 model.
    """
    layers = model.config.num_hidden_layers
    head = model.get_output_embeddings().weight.abs()
    worst = 0.0
    with torch.no_grad():
        for e in examples:
            text = tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False)
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            hidden = model.model(input_ids=ids).last_hidden_state[0].abs()
            worst = max(worst, float((hidden @ head.T).max()))
    return 2 * (2 + 16 * layers) * U_BF16 * worst


@needs_bf16
def test_bf16_losses_stay_within_the_rounding_bound_of_fp32(tiny, examples, tmp_path):
    losses, bounds = {}, []
    for precision in ("fp32", "bf16"):
        model, tokenizer = tiny.load(dtype=torch.float32)
        bounds.append(loss_bound(model, tokenizer, examples))
        seen = set()
        layer = model.model.layers[0].mlp.down_proj
        hook = layer.register_forward_hook(lambda m, i, out, seen=seen: seen.add(out.dtype))
        cfg = TrainConfig(model=tiny.name, precision=precision, **ARGS)
        trainer = make_trainer(model, tokenizer, examples, cfg, tmp_path / precision)
        trainer.train()
        hook.remove()
        losses[precision] = [e["loss"] for e in trainer.steps_log]
        bounds.append(loss_bound(trainer.model, tokenizer, examples))  # the weights after the steps
        expected = {"fp32": ("no", torch.float32), "bf16": ("bf16", torch.bfloat16)}[precision]
        assert (trainer.accelerator.mixed_precision, seen) == (expected[0], {expected[1]})
    # Later steps: the weights of the two runs differ by what their gradients' roundings changed in
    # AdamW's steps, whose first-order effect on the loss is that gradient times the step: the loss
    # error stays the evaluation error at nearly the same weights, so the bound holds for every step.
    bound = max(bounds)
    gaps = [abs(a - b) for a, b in zip(losses["fp32"], losses["bf16"])]
    assert all(gap <= bound for gap in gaps), (gaps, bound)
    print(f"bf16 - fp32 loss gaps {gaps}, bound {bound:.4g}")
    assert any(gap > 0 for gap in gaps)  # bf16 really ran: not the fp32 arithmetic again
    assert losses["bf16"][-1] < losses["bf16"][0]  # and it trained


def test_the_paper_profiles_bf16_reaches_the_trainer(tiny, examples, tmp_path):
    from harness_app.run_config import resolve

    paper = resolve("paper").train_config(seed=0)
    assert paper.precision == "bf16"
    args = sft_config(paper, tmp_path)
    assert (args.bf16, args.fp16, args.max_length) == (True, False, paper.max_length)
    assert (args.per_device_train_batch_size, args.learning_rate) == (8, 1.0e-6)
    if not torch.cuda.is_available() and not cpu_has_bf16_units():
        return  # the arguments carry it; building the trainer would emulate bf16
    model, tokenizer = tiny.load(dtype=torch.float32)
    small = replace(paper, model=tiny.name, max_length=512, batch_size=2, max_steps=1)
    trainer = make_trainer(model, tokenizer, examples, small, tmp_path / "paper")
    assert trainer.accelerator.mixed_precision == "bf16"


def test_precision_defaults_to_fp32_and_keeps_old_stage_hashes():
    cfg = TrainConfig()
    assert cfg.precision == "fp32" and "precision" not in cfg.as_inputs()
    assert TrainConfig(precision="bf16").as_inputs()["precision"] == "bf16"
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown precision 'fp16'"):
        TrainConfig(precision="fp16")
