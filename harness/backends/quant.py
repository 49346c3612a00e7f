"""Opt-in int8 dynamic quantisation of the decoder's linear layers (HFBackend(quantize="int8")).

Weights: int8, symmetric, one scale per output channel. Activations: quantised per call
(fbgemm's dynamic linear). About 2x the fp32 matmul rate on this CPU (AVX2, no VNNI), but the
outputs are no longer those of the fp32 model: perf/generation.py reports the agreement.
The vocabulary projection stays fp32, since quantisation error there moves the argmax most directly.
"""

from __future__ import annotations

import warnings

import torch

MODES = ("int8",)


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


def quantize_forward(fwd, mode: str) -> None:
    from harness.errors import HarnessError

    if mode not in MODES:
        raise HarnessError(f"unknown quantisation {mode!r}: choose one of {', '.join(MODES)}")
    if fwd.device.type != "cpu" or "fbgemm" not in torch.backends.quantized.supported_engines:
        raise HarnessError("int8 quantisation needs a CPU torch build with fbgemm")
    for layer in fwd.layers:
        for name in ("qkv", "o", "gate_up", "down"):
            linear = getattr(layer, name)
            setattr(layer, name, QuantLinear(linear.weight, linear.bias))
