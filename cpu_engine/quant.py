"""Opt-in lower-precision matmuls for the continuous engine (HFBackend(quantize=...)).

Both modes change the numbers, so the texts are no longer HF's fp32 greedy texts:
perf/generation.py reports how many stay identical.

- "int8": the decoder's linear layers as int8 (symmetric, one scale per output channel), with
  activations quantised per call (fbgemm's dynamic linear). The vocabulary projection stays fp32,
  since quantisation error there moves the argmax most directly. Measured on the AVX-512 + VNNI
  machine, it runs no faster than the native fp32 kernel (docs/performance.md).
- "bf16": every linear layer, the vocabulary projection included, with bf16 weights and inputs and
  fp32 accumulation, through oneDNN's prepacked kernels (AMX tiles on CPUs that have them). Norms,
  RoPE, attention and the KV cache stay fp32. On AMX CPUs the layer shapes run several times faster
  than fp32 `F.linear` (docs/performance.md, "Design figures").
"""

from __future__ import annotations

import warnings

import torch

# harness.backends.base.QUANTIZE_MODES names the same (tests/integration/test_backend_fast.py checks it).
MODES = ("int8", "bf16")


class QuantLinear:
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # torch flags its eager quantisation API as deprecated
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight.float().contiguous(), scale, zero, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, so AVX2's 16-bit pair sums cannot saturate without VNNI.
        return torch.ops.quantized.linear_dynamic(x, self.packed, True)


class Bf16Linear:
    """y = x W^T + b with W and x rounded to bf16, accumulated in fp32; fp32 in and out."""

    panels = None  # not the native fp32 kernel (FastForward.kernels_tag reads this)

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        from cpu_engine.linear import _pack

        # Prepacked once: F.linear on bf16 re-packs the weight every call (slower: docs/performance.md).
        self.packed = _pack(weight.to(torch.bfloat16))
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.mkldnn._linear_pointwise(
            x.to(torch.bfloat16), self.packed, None, "none", [], ""
        ).float()
        return y if self.bias is None else y.add_(self.bias)


def quantize_forward(fwd, mode: str) -> None:
    """Swap fwd's linear layers for `mode`'s; ValueError (one line, for the user) where it cannot apply."""
    if mode not in MODES:
        raise ValueError(f"unknown quantisation {mode!r}: choose one of {', '.join(MODES)}")
    if fwd.device.type != "cpu" or fwd.dtype != torch.float32:
        raise ValueError(f"{mode} quantisation applies to an fp32 model on the CPU")
    if mode == "int8" and "fbgemm" not in torch.backends.quantized.supported_engines:
        raise ValueError("int8 quantisation needs a CPU torch build with fbgemm")
    if mode == "bf16" and not (
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    ):
        raise ValueError("bf16 matmuls need oneDNN and a CPU with AVX-512 BF16 or AMX")
    make = QuantLinear if mode == "int8" else Bf16Linear
    for layer in fwd.layers:
        for name in ("qkv", "o", "gate_up", "down"):
            linear = getattr(layer, name)
            setattr(layer, name, make(linear.weight, linear.bias))
    if mode == "bf16":
        fwd.lm_head = Bf16Linear(fwd.lm_head.weight, fwd.lm_head.bias)
