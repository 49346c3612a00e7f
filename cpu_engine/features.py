"""The one rule for when a native kernel runs: only where its vector fast path exists here.

Each kernel family's C code has an AVX2 + FMA path (gemm.c and train_attention.c also an AVX-512 one)
and, for other CPUs, plain scalar loops that were never measured against torch. So a family runs
natively only when both this CPU and the library's build reach the vector level the family needs;
everywhere else (ARM, x86 without AVX2, a build narrowed by HARNESS_NATIVE_MARCH=x86-64-v2) the engine
runs torch's own ops, which torch vectorises for that CPU at runtime.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from pathlib import Path

import torch

AVX2, AVX512 = 256, 512  # vector bits
# family -> the vector level its fast path needs (the C sources' #if conditions)
FAMILIES = {
    "attention": AVX2,  # attend.c: simd.h's VEC (AVX2 + FMA); other head sizes than multiples of 8 go scalar
    "elementwise": AVX2,  # elementwise.c: simd.h's VEC
    "gemm": AVX2,  # gemm.c: the AVX2/FMA and AVX-512 micro-kernels
    "train": AVX2,  # training/train_kernels.c (the token loss): simd.h's VEC
    "train_attention": AVX512,  # training/train_attention.c: AVX-512 only
}
# The native matmul runs on calls of at most this many rows (decode steps); larger calls (prefill) go to
# torch's F.linear. perf/kernels.py measures each row count against torch.compile and prints the limit
# the margin rule gives (docs/performance.md).
GEMM_MAX_ROWS = 128
_LEVEL_FLAGS = ((AVX512, {"avx512f", "avx2", "fma"}), (AVX2, {"avx2", "fma"}))
_TORCH_LEVELS = {"AVX512": AVX512, "AVX2": AVX2}  # torch.backends.cpu.get_cpu_capability() names


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The x86 feature flags of /proc/cpuinfo; None where there is no such line (not Linux on x86)."""
    try:
        with open("/proc/cpuinfo") as fh:
            line = next((line for line in fh if line.startswith("flags")), None)
    except OSError:
        return None
    return None if line is None else frozenset(line.partition(":")[2].split())


def cpu_level() -> int:
    """The widest vector level this CPU runs the kernels' fast paths at: 512, 256 or 0 (none)."""
    flags = cpu_flags()
    if flags is None:  # macOS, Windows, no /proc: torch's own runtime dispatch answers
        return _TORCH_LEVELS.get(torch.backends.cpu.get_cpu_capability(), 0)
    return next((level for level, needed in _LEVEL_FLAGS if needed <= flags), 0)


def fast_path(family: str, lib, head_dim: int | None = None) -> bool:
    """Whether `family`'s kernels in the loaded library `lib` (None: not built) take their vector path here:
    the CPU and the build (the library's simd_level()) both reach the family's level."""
    if lib is None:
        return False
    level = min(cpu_level(), lib.simd_level())
    if family == "attention" and head_dim is not None and head_dim % 8:
        return False  # attend.c's vector path takes head sizes in whole 8-float chunks only
    return level >= FAMILIES[family]


def _mapped_file(address: int) -> str | None:
    """The file mapped at `address` in this process (Linux: /proc/self/maps), or None."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    for line in maps:
        fields = line.split()
        low, _, high = fields[0].partition("-")
        if int(low, 16) <= address < int(high, 16) and len(fields) > 5:
            return fields[5]
    return None


def openmp_runtime(lib) -> str | None:
    """The file of the OpenMP runtime a loaded library's calls reach (its omp_get_max_threads), or None."""
    try:
        return _mapped_file(ctypes.cast(lib.omp_get_max_threads, ctypes.c_void_p).value)
    except (AttributeError, OSError, ValueError):
        return None


def openmp_check(lib) -> str:
    """One line: whether the kernels of `lib` run on torch's OpenMP runtime. Two runtimes would be two
    thread pools spinning against each other on the same cores (other packages' private copies, such as
    scikit-learn's, may be loaded too: only the one each library calls matters)."""
    torch_lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    ours = openmp_runtime(lib)
    theirs = openmp_runtime(ctypes.CDLL(str(torch_lib))) if torch_lib.exists() else None
    if ours is None or theirs is None:
        return f"OpenMP: not checked on {platform.system()} (no runtime found through /proc/self/maps)"
    if ours == theirs:
        return f"OpenMP: the kernels run on torch's runtime ({theirs})"
    return f"OpenMP: the kernels' runtime {ours} is not torch's {theirs}: two thread pools compete"
