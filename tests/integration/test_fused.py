"""training/fused.py: each fused training kernel against torch's own ops (values and gradients), and the
switch that puts them into a Llama model and takes them out again."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers.models.llama import modeling_llama

from training import fused

needs_kernels = pytest.mark.skipif(fused.library() is None, reason="no C compiler: torch's ops only")


def _both(fn, ref, *inputs):
    """Outputs and input gradients of fn and ref on copies of the inputs, under one random upstream grad."""
    runs = []
    for f in (fn, ref):
        xs = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
        out = f(*xs)
        out = out if isinstance(out, tuple) else (out,)
        torch.manual_seed(1)
        sum((y * torch.randn_like(y)).sum() for y in out).backward()
        runs.append((out, [x.grad for x in xs if x.is_floating_point()]))
    return runs


def _close(runs, tol=1e-5):
    (out, grads), (ref_out, ref_grads) = runs
    for a, b in zip(out + tuple(grads), ref_out + tuple(ref_grads)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item())


@needs_kernels
@pytest.mark.parametrize("vocab", [49152, 1001])
def test_token_loss_matches_cross_entropy_and_the_logged_statistics(vocab):
    torch.manual_seed(0)
    logits = torch.randn(40, vocab) * 5
    target = torch.randint(0, vocab, (40,))
    target[::3] = logits[::3].argmax(-1)  # some hits
    logits[1, 7] = logits[1, 9] = logits[1].max() + 1  # a tie: torch.argmax takes the first
    target[1] = 7
    ours = logits.clone().requires_grad_()
    loss, entropy, hits = fused.token_loss(ours, target)
    (loss * 0.25).backward()
    ref = logits.clone().requires_grad_()
    ref_loss = F.cross_entropy(ref, target, reduction="sum")
    (ref_loss * 0.25).backward()
    logp = logits.log_softmax(-1)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(entropy, -(logp.exp() * logp).sum(), rtol=1e-5, atol=0)
    assert hits.item() == (logits.argmax(-1) == target).sum().item() >= 14
    # grad = 0.25 * (softmax - onehot). The softmax's normaliser sums `vocab` exps (each <= 1 once the
    # max is taken out) in another order than torch's: every p_j is off by p_j * ~sqrt(vocab) * 2**-24
    # (4x for the tail). At the target p - 1 cancels, so there that error is not relative to the
    # gradient (a scalar build: 6.7e-7 at vocab 1001, tests/integration/test_narrow_isa.py); elsewhere it is.
    p = logits.softmax(-1)
    bound = 1e-5 * ref.grad.abs() + 0.25 * p * 4 * vocab**0.5 * 2.0**-24
    assert ((ours.grad - ref.grad).abs() <= bound).all()
    assert not entropy.requires_grad and not hits.requires_grad


def test_token_loss_without_the_kernels_is_torchs(monkeypatch):
    monkeypatch.setattr(fused, "library", lambda: None)
    torch.manual_seed(0)
    logits, target = torch.randn(6, 50), torch.randint(0, 50, (6,))
    loss, entropy, hits = fused.token_loss(logits, target)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, target, reduction="sum").item(), rel=1e-6)
    assert hits.item() == (logits.argmax(-1) == target).sum().item()


def _tiny_llama():
    config = modeling_llama.LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return modeling_llama.LlamaForCausalLM(config)


@needs_kernels
def test_fused_model_gives_the_stock_loss_and_gradients_and_is_undone():
    model = _tiny_llama()
    ids = torch.randint(0, 300, (2, 20))
    grads = []
    for switch in (True, False):
        model.zero_grad()
        modules = fused.fusable(list(model.modules())) if switch else []
        assert not switch or modules == [model.lm_head]
        with fused.fused(modules):
            logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, 300), ids[:, 1:].reshape(-1))
        loss.backward()
        grads.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (fused_loss, fused_grads), (stock_loss, stock_grads) = grads
    torch.testing.assert_close(fused_loss, stock_loss, rtol=1e-6, atol=0)
    for name, g in stock_grads.items():
        torch.testing.assert_close(fused_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # Undone: the modules' own forwards again.
    assert all("forward" not in vars(m) for m in model.modules())


def _rows_by_sdpa(q, k, v, lengths, scale):
    parts = zip(*(x.split(lengths, dim=2) for x in (q, k, v)))
    out = [F.scaled_dot_product_attention(*p, is_causal=True, enable_gqa=True, scale=scale) for p in parts]
    # contiguous, as the fallback: the same layout gets the same random upstream gradient
    return torch.cat(out, dim=2).transpose(1, 2).contiguous()


needs_attention = pytest.mark.skipif(
    fused.library() is None or not fused.library().attention_available(), reason="the kernel needs AVX-512"
)


@needs_attention
@pytest.mark.parametrize(
    "lengths,heads,kv_heads",
    [([1, 63, 64, 65, 130], 9, 3), ([200], 4, 4), ([7, 1, 64], 2, 1)],  # partial tiles, one-token rows, GQA
)
def test_row_attention_matches_sdpa_per_row(lengths, heads, kv_heads):
    torch.manual_seed(0)
    n = sum(lengths)
    # transposed views of [1, tokens, heads, 64], as Llama's attention hands them over
    q, k, v = (torch.randn(1, n, h, 64).transpose(1, 2) for h in (heads, kv_heads, kv_heads))
    runs = _both(
        lambda q, k, v: fused.row_attention(q, k, v, lengths, 0.125),
        lambda q, k, v: _rows_by_sdpa(q, k, v, lengths, 0.125),
        q,
        k,
        v,
    )
    _close(runs, tol=1e-5)


@needs_attention
def test_row_attention_gradients_are_the_same_bits_every_run():
    torch.manual_seed(0)
    lengths = [300, 130, 257]  # more tiles than threads, of unequal cost
    n = sum(lengths)
    q, k, v = (torch.randn(1, n, h, 64).transpose(1, 2).requires_grad_() for h in (9, 3, 3))
    grad = torch.randn(1, n, 9, 64)
    runs = []
    for _ in range(3):
        for x in (q, k, v):
            x.grad = None
        fused.row_attention(q, k, v, lengths, 0.125).backward(grad)
        runs.append([x.grad.clone() for x in (q, k, v)])
    assert all(torch.equal(a, b) for run in runs[1:] for a, b in zip(run, runs[0]))


@needs_attention
def test_row_attention_refuses_lengths_that_do_not_cover_the_pack():
    q, k, v = (torch.randn(1, h, 10, 64) for h in (4, 2, 2))
    with pytest.raises(ValueError, match="sum to 12"):
        fused.row_attention(q, k, v, [4, 8], 0.125)


def test_row_attention_leaves_other_head_sizes_to_sdpa():
    q, k, v = (torch.randn(1, h, 10, 16) for h in (4, 2, 2))
    assert fused.row_attention(q, k, v, [4, 6], 0.25) is None


@needs_kernels
def test_fusable_takes_the_plain_lm_head_only():
    model = _tiny_llama()
    assert fused.fusable(list(model.modules())) == [model.lm_head]  # norms, MLPs and RoPE stay the model's
    model.lm_head.bias = torch.nn.Parameter(torch.zeros(300))
    assert fused.fusable(list(model.modules())) == []


@needs_kernels
def test_lm_head_gives_the_stock_gradient_of_a_tied_weight():
    model = _tiny_llama()
    model.lm_head.weight = model.model.embed_tokens.weight  # tied, as SmolLM2's
    ids = torch.randint(0, 300, (1, 20))
    grads = []
    for switch in (True, False):
        model.zero_grad()
        with fused.fused(fused.fusable(list(model.modules())) if switch else []):
            logits = model(input_ids=ids).logits
        F.cross_entropy(logits[0, :-1], ids[0, 1:]).backward()
        grads.append(model.lm_head.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("HARNESS_NATIVE", "0")
    fused.library.cache_clear()
    try:
        assert fused.library() is None
        assert fused.fusable(list(_tiny_llama().modules())) == []
    finally:
        monkeypatch.delenv("HARNESS_NATIVE")
        fused.library.cache_clear()
