"""The training step's fused CPU kernels (training/train_kernels.c: the token loss; training/train_attention.c:
causal attention within each packed row) as autograd functions, an LM head
whose weight gradient sums in place, and the switch that puts them into a Llama-architecture model for
one forward.

Same math as the model's own modules and TRL's loss; the results differ from torch's by float rounding
(tests/integration/test_fused.py compares values and gradients). Used by training/fast_sft.py on fp32 CPU models;
anything else (another architecture, another dtype, a GPU, no C compiler, HARNESS_NATIVE=0) keeps
torch's own ops.
"""

from __future__ import annotations

import contextlib
import ctypes
from functools import lru_cache
from pathlib import Path

import torch
from transformers.models.llama import modeling_llama

import cpu_engine

SOURCES = [Path(__file__).with_name(name) for name in ("train_kernels.c", "train_attention.c")]


@lru_cache(maxsize=1)
def library():
    """The loaded training kernels, or None."""
    lib = cpu_engine.build_library(SOURCES, "train-kernels", "training runs on torch's own ops")
    if not cpu_engine.fast_path("train", lib):  # no vector path here: torch's ops are the faster ones
        return None
    ptr, size = ctypes.c_void_p, ctypes.c_int64
    lib.token_loss.argtypes = [ptr] * 6 + [size] * 2
    lib.attention_forward.argtypes = [ptr] * 6 + [size] * 3 + [ctypes.c_float]
    lib.attention_backward.argtypes = [ptr] * 10 + [size] * 3 + [ctypes.c_float]
    for fn in (
        lib.token_loss,
        lib.attention_forward,
        lib.attention_backward,
    ):
        fn.restype = None
    return lib


def _cpu_fp32(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def token_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits [n, vocab] against target [n] (differentiable), with the summed
    entropy of the softmax and the top-1 hits (not differentiable), in two passes over the logits.

    torch's F.cross_entropy plus the logged statistics (TRL logs entropy and token accuracy) take a
    log-softmax, its backward, an exp for the entropy and an argmax: five passes over a tensor of
    hundreds of MB."""
    if library() is None or not _cpu_fp32(logits):
        logp = logits.log_softmax(-1)
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum()
            hits = (logp.argmax(-1) == target).sum()
        return torch.nn.functional.nll_loss(logp, target, reduction="sum"), entropy, hits
    return _TokenLoss.apply(logits.contiguous(), target.contiguous())


class _TokenLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        n, vocab = logits.shape
        grad = torch.empty_like(logits) if ctx.needs_input_grad[0] else None
        nll, entropy = torch.empty(n), torch.empty(n)
        top = torch.empty(n, dtype=torch.int64)
        library().token_loss(
            logits.data_ptr(),
            target.data_ptr(),
            None if grad is None else grad.data_ptr(),
            nll.data_ptr(),
            entropy.data_ptr(),
            top.data_ptr(),
            n,
            vocab,
        )
        ctx.grad = grad  # the softmax minus the one-hot: the backward only scales it
        entropy, hits = entropy.sum(), (top == target).sum()
        ctx.mark_non_differentiable(entropy, hits)
        return nll.sum(), entropy, hits

    @staticmethod
    def backward(ctx, grad_loss, *_):
        if ctx.grad is None:
            raise RuntimeError("token_loss: backward through the graph a second time")
        grad, ctx.grad = ctx.grad, None  # scaled in place: the buffer is this function's own
        return grad.mul_(grad_loss), None


def row_attention(query, key, value, lengths: list[int], scale: float) -> torch.Tensor | None:
    """Causal attention within each row of a pack, by the fused kernel (training/train_attention.c): query
    [1, heads, tokens, 64], key and value [1, kv_heads, tokens, 64] (transposed views of the projections'
    [1, tokens, heads, 64], as Llama's attention passes them), rows of `lengths` tokens end to end. Returns
    [1, tokens, heads, 64], the layout the output projection reads, or None where the kernel does not
    apply (no AVX-512 build, another head size or dtype, a GPU)."""
    lib = library()
    if (
        not cpu_engine.fast_path("train_attention", lib)
        or not lib.attention_available()
        or not _cpu_fp32(query, key, value)
    ):
        return None
    if query.shape[0] != 1 or query.shape[-1] != 64 or query.shape[1] % key.shape[1]:
        return None
    if sum(lengths) != query.shape[2]:  # the kernel would read past the pack
        raise ValueError(f"row lengths sum to {sum(lengths)}, the pack has {query.shape[2]} tokens")
    starts = torch.tensor([0, *lengths], dtype=torch.int64).cumsum(0)
    return _RowAttention.apply(query, key, value, starts, float(scale))


class _RowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, starts, scale):
        q, k, v = (x.transpose(1, 2).contiguous() for x in (query, key, value))  # no copy from a projection
        tokens, heads = q.shape[1], q.shape[2]
        out, lse = torch.empty_like(q), torch.empty(tokens, heads)
        library().attention_forward(
            *(x.data_ptr() for x in (q, k, v, out, lse, starts)), len(starts) - 1, heads, k.shape[2], scale
        )
        ctx.save_for_backward(q, k, v, out, lse, starts)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse, starts = ctx.saved_tensors
        dout = dout.contiguous()
        dq, dk, dv = torch.zeros_like(q), torch.empty_like(k), torch.empty_like(v)
        library().attention_backward(
            *(x.data_ptr() for x in (q, k, v, out, dout, lse, dq, dk, dv, starts)),
            len(starts) - 1,
            q.shape[2],
            k.shape[2],
            ctx.scale,
        )
        return dq.transpose(1, 2), dk.transpose(1, 2), dv.transpose(1, 2), None, None


class _Head(torch.autograd.Function):
    """The LM head, x @ weight.T, whose weight gradient is a fresh contiguous product: a tied weight's two
    gradients (this one and the embedding's) are then summed in place. nn.Linear's comes out as a
    transposed view, which autograd sums with the embedding's into a third vocabulary-sized tensor."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return x @ weight.t()

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        dx = grad @ weight if ctx.needs_input_grad[0] else None
        dw = grad.flatten(0, -2).t() @ x.flatten(0, -2) if ctx.needs_input_grad[1] else None
        return dx, dw


def _head_forward(self, x):
    if not _cpu_fp32(x, self.weight):
        return type(self).forward(self, x)
    return _Head.apply(x, self.weight)


def fusable(modules: list[torch.nn.Module]) -> list[torch.nn.Module]:
    """The modules of a model (all of them, in one walk) whose forward `fused` replaces: its plain
    (bias-free nn.Linear) LM head; [] where the kernels cannot load. RMSNorm, the SiLU gate and RoPE keep
    the model's own forwards: their kernels lost to torch.compile (docs/performance.md, the margin rule)
    and were removed."""
    if library() is None:
        return []
    heads = {
        id(m.lm_head)
        for m in modules
        if isinstance(m, modeling_llama.LlamaForCausalLM)
        and type(m.lm_head) is torch.nn.Linear
        and m.lm_head.bias is None
    }
    return [m for m in modules if id(m) in heads]


@contextlib.contextmanager
def fused(modules: list[torch.nn.Module]):
    """The LM head's forward (from `fusable`) for the duration of one forward; the autograd graph it builds
    keeps it for the backward. The model's own forwards after."""
    for m in modules:
        m.forward = _head_forward.__get__(m)
    try:
        yield
    finally:
        for m in modules:
            del m.forward
