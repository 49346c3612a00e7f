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
from cpu_engine.features import GEMM_MAX_ROWS
from cpu_engine.linear import Linear, _bias, _fuse
from cpu_engine.slots import Step

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
    every step (its host time per call was most of a decode step on an H100: docs/performance.md)."""

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
            + (f":gemm-native{GEMM_MAX_ROWS}" if self.lm_head.panels is not None else "")
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
        step = Step(counts, starts, self.heads // self.kv_heads, self.device)
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
