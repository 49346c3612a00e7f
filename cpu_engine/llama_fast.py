"""A lean forward pass for llama-family decoders (Llama, Mistral, Qwen2, SmolLM) over the HF model's own weights.

Why not call the HF module tree: on two CPU cores its per-op Python and mask bookkeeping cost as much
as the matmuls of a 135M model, and its caches cannot hold rows at different positions. This class
replays the same operations (RMSNorm, RoPE table values, SDPA, SiLU MLP): in torch, in the same
order; on a CPU in fp32, through the native kernels (native.py), whose sums run in their own fixed
order, so each row's result still depends only on that row. Fusing q/k/v and gate/up into one matmul
only concatenates output columns, so each output element is still one dot product over the same
inputs. The HF model keeps working: its projection weights become views into the fused matrices, so
no weight is stored twice.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cpu_engine import native

_FAMILIES = {"llama", "mistral", "qwen2"}


def unsupported_reason(model) -> str | None:
    """None when `model` fits this forward pass exactly; otherwise why not (the caller falls back)."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in _FAMILIES:
        return f"model type {getattr(cfg, 'model_type', None)!r} is not llama-like"
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "pretraining_tp", 1) > 1:
        return "non-standard activation or tensor-parallel weights"
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return "sliding-window attention"
    if getattr(cfg, "mlp_bias", False):
        return "MLP biases"
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) in ("dynamic", "longrope"):
        return "RoPE that rescales with the sequence length"
    if getattr(model.config, "_attn_implementation", "sdpa") not in ("sdpa", "eager", None):
        return f"attention implementation {model.config._attn_implementation!r}"
    layer = model.model.layers[0]
    attn = getattr(layer, "self_attn", None)
    if (
        attn is None
        or any(hasattr(attn, n) for n in ("q_norm", "k_norm"))
        or not hasattr(layer.mlp, "gate_proj")
    ):
        return "layer structure differs from llama"
    return None


class Linear:
    """y = x W^T + b with the weight pre-packed once: the native matmul (gemm.c) where it is built,
    else oneDNN.

    Measured on this 2-core CPU: oneDNN's packed kernel runs 1.2-2.4x MKL sgemm (F.linear, which
    re-packs the weight on every call) at 34-64 rows, and the native one 1.2-1.5x oneDNN on a decode
    step's cold weights at 1-100 rows. Still fp32 with fp32 accumulation; only the summation order
    differs. With the native matmul each output row is bitwise the same whatever the other rows of
    the call are (oneDNN: from 16 rows up).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, packed: bool = True):
        self.weight, self.bias = weight, bias
        self.panels = native.pack_panels(weight) if packed else None
        self.packed = _pack(weight) if packed and self.panels is None else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.panels is not None:
            y = native.gemm(x, self.panels)
            return y if self.bias is None else y.add_(self.bias)
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def _pack(weight: torch.Tensor) -> torch.Tensor | None:
    if (
        weight.device.type != "cpu"
        or weight.dtype not in (torch.float32, torch.bfloat16)  # bf16: quant.py's opt-in mode
        or not torch.backends.mkldnn.is_available()
    ):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), 64)
    except (RuntimeError, AttributeError):  # a torch build without these oneDNN ops
        return None


@dataclass
class _Layer:
    ln1: torch.Tensor
    ln2: torch.Tensor
    eps1: float
    eps2: float
    qkv: Linear
    o: Linear
    gate_up: Linear
    down: Linear


def _fuse(modules) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight matrix for several Linear layers; the layers' weights become views into it."""
    weight = torch.cat([m.weight.detach() for m in modules]).contiguous()
    has_bias = [m.bias is not None for m in modules]
    bias = torch.cat([m.bias.detach() for m in modules]).contiguous() if all(has_bias) else None
    if any(has_bias) and bias is None:
        raise ValueError("mixed biases cannot be fused")
    start = 0
    for m in modules:
        n = m.weight.shape[0]
        m.weight.data = weight[start : start + n]
        if bias is not None:
            m.bias.data = bias[start : start + n]
        start += n
    return weight, bias


def _bias(linear) -> torch.Tensor | None:
    return linear.bias.detach() if getattr(linear, "bias", None) is not None else None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # HF's LlamaRMSNorm, op for op: fp32 statistics even for bf16/fp16 inputs (the casts are free in fp32).
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _no_cudnn_attention(method):
    """On a GPU, SDPA may pick any kernel but cuDNN's: cuDNN plans per shape, and decode shapes change
    every step (measured on an H100: 2 ms of host time per call, two thirds of a decode step)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if self.device.type != "cuda":
            return method(self, *args, **kwargs)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
            return method(self, *args, **kwargs)

    return run


class FastForward:
    """Prefill and single-token decode over a slot KV cache (see `KVSlots`)."""

    def __init__(self, model, packed: bool = True):
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(reason)
        cfg = model.config
        base = model.model
        self.model = model
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.nq = self.heads * self.head_dim
        self.nk = self.kv_heads * self.head_dim
        self.inter = cfg.intermediate_size
        self.scaling = self.head_dim**-0.5
        self.dtype = base.embed_tokens.weight.dtype
        self.device = base.embed_tokens.weight.device
        self.embed = base.embed_tokens.weight.detach()
        self.lm_head = Linear(model.lm_head.weight.detach(), _bias(model.lm_head), packed)
        self.norm, self.norm_eps = base.norm.weight.detach(), base.norm.variance_epsilon
        self.layers = []
        for layer in base.layers:
            a, m = layer.self_attn, layer.mlp
            wqkv, bqkv = _fuse([a.q_proj, a.k_proj, a.v_proj])
            wgu, bgu = _fuse([m.gate_proj, m.up_proj])
            if bgu is not None or m.down_proj.bias is not None:
                raise ValueError("MLP biases are not llama-like")
            self.layers.append(
                _Layer(
                    layer.input_layernorm.weight.detach(),
                    layer.post_attention_layernorm.weight.detach(),
                    layer.input_layernorm.variance_epsilon,
                    layer.post_attention_layernorm.variance_epsilon,
                    Linear(wqkv, bqkv, packed),
                    Linear(a.o_proj.weight.detach(), _bias(a.o_proj), packed),
                    Linear(wgu, None, packed),
                    Linear(m.down_proj.weight.detach(), None, packed),
                )
            )
        self._rotary = base.rotary_emb
        # Decode attention: the native kernel (fp32 on CPU) where it is built, else torch SDPA.
        cpu_fp32 = self.device.type == "cpu" and self.dtype == torch.float32
        self.attend = native.attend if cpu_fp32 and native.kernel(self.head_dim) is not None else None
        # The elementwise steps in C where the attention kernel runs (same build, same vector level).
        self.native = self.attend is not None and native.elementwise_available()
        if self.device.type == "cpu":
            native.retain_freed_memory()
        self.cos = self.sin = torch.empty(0)

    @property
    def kernels_tag(self) -> str:
        """Which native kernels run (fingerprint part): the same tokens as SDPA and oneDNN so far, but not
        the same float rounding."""
        march = os.environ.get(native.MARCH_VARIABLE, "").strip()  # a narrower build rounds differently
        return (
            (":attn-native2:elementwise-native" if self.attend is not None else "")
            + (":gemm-native" if self.lm_head.panels is not None else "")
            + (f":march-{march}" if march and self.attend is not None else "")
        )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def _rope_table(self, length: int) -> None:
        # HF computes cos/sin elementwise per position, so a table lookup gives the same values.
        if self.cos.shape[0] >= length:
            return
        size = max(length, 2 * self.cos.shape[0], 1024)
        pos = torch.arange(size, device=self.device)[None]
        cos, sin = self._rotary(self.embed[:1][None], pos)
        self.cos, self.sin = cos[0].to(self.dtype), sin[0].to(self.dtype)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return (x * cos) + (_rotate_half(x) * sin)

    def _norm(
        self, x: torch.Tensor, weight: torch.Tensor, eps: float, delta: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual stream plus `delta` (the previous block's output), and its RMSNorm."""
        if self.native:
            return x, native.residual_norm(x, delta, weight, eps)  # x updated in place
        x = x if delta is None else x + delta
        return x, rms_norm(x, weight, eps)

    def _mlp(self, h: torch.Tensor, lw: _Layer) -> torch.Tensor:
        gu = lw.gate_up(h)
        if self.native:
            return lw.down(native.silu_mul(gu))
        return lw.down(F.silu(gu[:, : self.inter]) * gu[:, self.inter :])

    def _layers(self, x: torch.Tensor, attention) -> torch.Tensor:
        """The decoder stack over embeddings x, returning the final-normed hidden states; attention(i, lw, h)
        gives layer i's attention output (before o_proj) for its normed input h."""
        delta = None
        for i, lw in enumerate(self.layers):
            x, h = self._norm(x, lw.ln1, lw.eps1, delta)
            x, h = self._norm(x, lw.ln2, lw.eps2, lw.o(attention(i, lw, h)))
            delta = self._mlp(h, lw)
        return self._norm(x, self.norm, self.norm_eps, delta)[1]

    @torch.inference_mode()
    def prefill(self, seqs: list[list[int]], slots: list[int], cache) -> torch.Tensor:
        """Whole prompts into empty slots; the logits of each prompt's last token."""
        return self.extend(seqs, slots, [0] * len(seqs), cache, [1] * len(seqs))

    @torch.inference_mode()
    @_no_cudnn_attention
    def extend(
        self, seqs: list[list[int]], slots: list[int], past: list[int], cache, keep: list[int]
    ) -> torch.Tensor:
        """Append `seqs[j]` to slot `slots[j]`, which already caches `past[j]` positions.

        All parts run packed (no padding) through the matmuls; attention runs per part. Returns the
        logits of the last `keep[j]` tokens of each part, concatenated in order. Parts sharing a
        slot run in order, each overwriting the previous one's tail (scoring several
        continuations of one cached context).
        """
        lengths = [len(s) for s in seqs]
        self._rope_table(max(p + n for p, n in zip(past, lengths)) + 1)
        ids = torch.tensor([t for s in seqs for t in s], device=self.device)
        pos = torch.cat([torch.arange(p, p + n, device=self.device) for p, n in zip(past, lengths)])
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]
        total, d = ids.shape[0], self.head_dim
        gqa = self.kv_heads != self.heads

        def attention(i: int, lw: _Layer, h: torch.Tensor) -> torch.Tensor:
            qkv = lw.qkv(h)
            q = self._rope(qkv[:, : self.nq].view(total, self.heads, d), cos, sin)
            k = self._rope(qkv[:, self.nq : self.nq + self.nk].view(total, self.kv_heads, d), cos, sin)
            v = qkv[:, self.nq + self.nk :].view(total, self.kv_heads, d)
            out = torch.empty(total, self.nq, dtype=h.dtype, device=h.device)
            start = 0
            for n, slot, p in zip(lengths, slots, past):
                part = slice(start, start + n)
                kj, vj = k[part].transpose(0, 1), v[part].transpose(0, 1)
                cache.k[i][slot, :, p : p + n] = kj
                cache.v[i][slot, :, p : p + n] = vj
                qj = q[part].transpose(0, 1)[None]
                if p == 0:  # as HF's batch-1 prefill: causal SDPA over the part itself
                    o = F.scaled_dot_product_attention(
                        qj, kj[None], vj[None], is_causal=True, scale=self.scaling, enable_gqa=gqa
                    )
                else:
                    cols = torch.arange(p + n, device=self.device)
                    mask = cols[None] <= cols[p:, None]
                    o = F.scaled_dot_product_attention(
                        qj,
                        cache.k[i][slot, :, : p + n][None],
                        cache.v[i][slot, :, : p + n][None],
                        attn_mask=mask,
                        scale=self.scaling,
                        enable_gqa=gqa,
                    )
                out[part] = o[0].transpose(0, 1).reshape(n, self.nq)
                start += n
            return out

        h = self._layers(F.embedding(ids, self.embed), attention)
        ends = torch.tensor(lengths, device=self.device).cumsum(0)
        rows = torch.cat([torch.arange(e - k, e, device=self.device) for e, k in zip(ends.tolist(), keep)])
        return self.lm_head(h[rows])

    @torch.inference_mode()
    @_no_cudnn_attention
    def decode(
        self,
        tokens: torch.Tensor,
        counts: list[int],
        starts: list[int],
        cache,
        spans: list[tuple[int, int, int]],
    ) -> torch.Tensor:
        """The next counts[j] tokens of the row in slot j, at positions starts[j], starts[j] + 1, ...

        `tokens` holds each row's tokens in slot order. One token per row is plain decoding; more
        are a row's newest token followed by draft tokens to verify, each attending to the cache and
        the row's earlier tokens of this step. Returns the logits of every token, in order.
        `spans` splits the rows into (start, end, width) runs that attend to cache columns [0, width)
        when torch's SDPA does the attention (see native.py): short rows skip the long rows' padding.
        """
        d, total = self.head_dim, tokens.shape[0]
        step = _Step(counts, starts, self.heads // self.kv_heads, self.device)
        self._rope_table(max(w for _, _, w in spans))
        if self.attend is None:
            masks = [
                torch.arange(w, device=self.device)[None, None, None] <= step.seen[s:e, None, :, None]
                for s, e, w in spans
            ]
            cos, sin = self.cos[step.pos][:, None], self.sin[step.pos][:, None]

        def attention(i: int, lw: _Layer, h: torch.Tensor) -> torch.Tensor:
            qkv = lw.qkv(h)
            kc, vc = cache.k[i], cache.v[i]
            if self.native:
                q = native.rope_store(qkv, self.cos, self.sin, step.slot, step.pos, kc, vc, self.heads)
            else:
                qk = self._rope(
                    qkv[:, : self.nq + self.nk].view(total, self.heads + self.kv_heads, d), cos, sin
                )
                kc[step.slot, :, step.pos] = qk[:, self.heads :]
                vc[step.slot, :, step.pos] = qkv[:, self.nq + self.nk :].view(total, self.kv_heads, d)
                q = qk[:, : self.heads]
            q = step.to_rows(q.reshape(total, self.kv_heads, -1, d))
            if self.attend is not None:
                o = self.attend(q, kc, vc, step.limit, self.scaling)
            else:
                o = torch.empty_like(q)
                for (s, e, w), mask in zip(spans, masks):
                    o[s:e] = F.scaled_dot_product_attention(
                        q[s:e], kc[s:e, :, :w], vc[s:e, :, :w], attn_mask=mask, scale=self.scaling
                    )
            return step.to_tokens(o).reshape(total, self.nq)

        return self.lm_head(self._layers(F.embedding(tokens, self.embed), attention))


class _Step:
    """Index bookkeeping of one decode step: rows verify different numbers of tokens.

    Attention runs on a padded [row, kv head, token x query head, d] layout (query heads sharing a
    kv head become that head's query rows, as in HF's pack_gqa); a row's padding repeats its last
    token and is skipped by the kernel (limit 0).
    """

    def __init__(self, counts: list[int], starts: list[int], rep: int, device):
        n = torch.tensor(counts, device=device)
        self.rows, self.width, self.rep = len(counts), max(counts), rep
        step = torch.arange(self.width, device=device)[None]
        real = step < n[:, None]
        clamped = torch.minimum(step, n[:, None] - 1)
        position = torch.tensor(starts, device=device)[:, None] + clamped
        self.slot = torch.repeat_interleave(torch.arange(self.rows, device=device), n)
        self.pos = position[real]
        self.padded = ((torch.cumsum(n, 0) - n)[:, None] + clamped).flatten()
        self.real = real.flatten()
        # Query row (token t, head r) sees cache columns [0, position of t].
        self.seen = position.repeat_interleave(rep, dim=1)
        self.limit = torch.where(real.repeat_interleave(rep, dim=1), self.seen + 1, 0).contiguous()

    def to_rows(self, q: torch.Tensor) -> torch.Tensor:
        """[tokens, kv heads, rep, d] -> [rows, kv heads, width * rep, d], contiguous."""
        if self.width == 1:
            return q.contiguous()
        kv, d = q.shape[1], q.shape[3]
        return (
            q[self.padded]
            .view(self.rows, self.width, kv, self.rep, d)
            .transpose(1, 2)
            .reshape(self.rows, kv, self.width * self.rep, d)
        )

    def to_tokens(self, o: torch.Tensor) -> torch.Tensor:
        """The inverse of to_rows, dropping the padding: [tokens, kv heads, rep, d]."""
        if self.width == 1:
            return o
        kv, d = o.shape[1], o.shape[3]
        return (
            o.view(self.rows, kv, self.width, self.rep, d)
            .transpose(1, 2)
            .reshape(self.rows * self.width, kv, self.rep, d)[self.real]
        )


class KVSlots:
    """Per-layer K/V buffers [slots, kv_heads, capacity, head_dim]; a slot holds one sequence from position 0.

    Capacity grows on demand. Where the native attention kernel runs (CPU), the buffers are left
    uninitialised: the kernel reads no column past a row's limit, and the pages a CPU never writes are
    never committed, so a cache sized up front for prompt + max_new_tokens costs memory only for the
    positions used (growing it copied gigabytes: 4.1 s of a 74 s run of 64 prompts). Elsewhere masked
    columns still enter SDPA's products, and stray NaN bits would survive the mask: zeros, grown on
    demand, as a GPU's memory is committed when allocated.
    """

    def __init__(self, fwd: FastForward, slots: int, capacity: int = 256, longest: int | None = None):
        """`longest`: the most positions a slot will need, when known; an uninitialised cache takes them at once."""
        self.shape = (slots, fwd.kv_heads, 0, fwd.head_dim)
        self.dtype, self.device, self.n_layers = fwd.dtype, fwd.device, fwd.n_layers
        self.lazy = fwd.attend is not None
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.capacity = 0
        self.ensure(longest if self.lazy and longest else capacity)

    def ensure(self, length: int) -> None:
        if length <= self.capacity:
            return
        new = -(-max(length, self.capacity * 3 // 2) // 64) * 64
        shape = (self.shape[0], self.shape[1], new, self.shape[3])
        old_k, old_v, old = self.k, self.v, self.capacity
        make = torch.empty if self.lazy else torch.zeros
        self.k = [make(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layers)]
        self.v = [make(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layers)]
        for dst, src in zip(self.k + self.v, old_k + old_v):
            dst[:, :, :old] = src
        self.capacity = new

    def copy_from(self, other: KVSlots, src: int, dst: int, length: int) -> None:
        """Positions [0, length) of `other`'s slot src into this cache's slot dst."""
        _copy_slot(self, other, src, dst, length)

    def move(self, src: int, dst: int, length: int) -> None:
        _copy_slot(self, self, src, dst, length)


def _copy_slot(into: KVSlots, source: KVSlots, src: int, dst: int, length: int) -> None:
    for mine, theirs in zip(into.k + into.v, source.k + source.v):
        mine[dst, :, :length] = theirs[src, :, :length]
