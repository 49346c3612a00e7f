"""The engine's fp32 linear layers: each weight packed once, for the native matmul (gemm.c) or oneDNN,
and the fusing of several HF Linear layers into one matrix whose column blocks they keep as views."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cpu_engine import native
from cpu_engine.features import GEMM_MAX_ROWS


class Linear:
    """y = x W^T + b with the weight pre-packed once: the native matmul (gemm.c) where it is built, on
    calls of up to GEMM_MAX_ROWS rows (decode steps), torch's F.linear on larger ones (prefill); oneDNN's
    packed kernel where the native matmul is not built.

    Why each (docs/performance.md has the figures): oneDNN's packed kernel beats MKL's sgemm
    (F.linear re-packs the weight on every call) on decode-sized calls, the native one beats both
    there, and on prefill-sized calls none beats F.linear by the margin rule's 10 %. All fp32 with
    fp32 accumulation; only the summation order differs. So a row's bits can depend on the size of its
    call: a prompt prefilled alone or beside others may differ in the last bits.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, packed: bool = True):
        self.weight, self.bias = weight, bias
        self.panels = native.pack_panels(weight) if packed else None
        self.packed = _pack(weight) if packed and self.panels is None else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.panels is not None:
            if x.numel() > GEMM_MAX_ROWS * x.shape[-1]:  # a prefill: torch.compile's matmul is as fast
                return F.linear(x, self.weight, self.bias)
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
