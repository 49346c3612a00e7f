"""The CPU engine: a lean llama-family forward pass with continuous batching and native C kernels.

The one interface the rest of the project calls (harness/backends/hf.py for generation and scoring,
training/fused.py and training/fast_sft.py for the training step's kernels). Modules outside this package import
these names from `cpu_engine`, never its submodules (scripts/check_imports.py enforces it; tests may).
The engine sits below the evaluation library and the training package: it imports neither.

- forward: `FastForward(model)` over an HF model's own weights, `KVSlots`, `unsupported_reason(model)`
- generation: `Scheduler` (continuous batching over KV slots) and its `Sequence` rows
- scoring: `loglikelihoods(fwd, requests, reduce=...)` with `sum_and_greedy` or `per_token`
- opt-in precision: `quantize_forward(fwd, mode)` for `QUANTIZE_MODES`
- kernels: `build_library(sources, stem, fallback)` (a C library built against the engine's simd.h),
  `fast_path(family, lib)` (features.py: whether a kernel family's vector path exists here),
  `describe()`, `retain_freed_memory()`, `openmp_check()`
"""

from __future__ import annotations

from cpu_engine.decode import Scheduler, Sequence
from cpu_engine.features import fast_path, openmp_check
from cpu_engine.llama_fast import FastForward, unsupported_reason
from cpu_engine.native import build_library, describe, retain_freed_memory
from cpu_engine.quant import MODES as QUANTIZE_MODES
from cpu_engine.quant import quantize_forward
from cpu_engine.score import loglikelihoods, per_token, sum_and_greedy
from cpu_engine.slots import KVSlots

__all__ = [
    "FastForward",
    "KVSlots",
    "QUANTIZE_MODES",
    "Scheduler",
    "Sequence",
    "build_library",
    "describe",
    "fast_path",
    "loglikelihoods",
    "openmp_check",
    "per_token",
    "quantize_forward",
    "retain_freed_memory",
    "sum_and_greedy",
    "unsupported_reason",
]
