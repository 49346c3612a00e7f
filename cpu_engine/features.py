"""The one rule for when a native kernel runs: only where its vector fast path exists here.

Each kernel family's C code has an AVX2 + FMA path (gemm.c and train_attention.c also an AVX-512 one)
and, for other CPUs, plain scalar loops that were never measured against torch. So a family runs
natively only when both this CPU and the library's build reach the vector level the family needs;
everywhere else (ARM, x86 without AVX2, a build narrowed by HARNESS_NATIVE_MARCH=x86-64-v2) the engine
runs torch's own ops, which torch vectorises for that CPU at runtime.
"""

from __future__ import annotations

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
    "train": AVX2,  # cgd/train_kernels.c: simd.h's VEC
    "train_attention": AVX512,  # cgd/train_attention.c: AVX-512 only
}
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


def openmp_runtimes() -> list[str]:
    """The OpenMP runtimes mapped into this process (Linux: /proc/self/maps), by path."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    names = ("libgomp", "libiomp", "libomp")
    return sorted(
        {p for line in maps.splitlines() if (p := line.split()[-1]).rpartition("/")[2].startswith(names)}
    )


def openmp_check() -> str:
    """One line: whether the kernels share torch's OpenMP runtime (one runtime mapped), or which compete.
    Two runtimes would each keep a thread pool spinning against the other on the same cores."""
    runtimes = openmp_runtimes()
    if not runtimes:
        return f"OpenMP: no runtime visible on {platform.system()} (not checked)"
    torch_dir = Path(torch.__file__).parent
    if len(runtimes) == 1:
        whose = (
            "torch's" if Path(runtimes[0]).is_relative_to(torch_dir) else "the system's, shared with torch"
        )
        return f"OpenMP: one runtime, {whose} ({runtimes[0]})"
    return f"OpenMP: {len(runtimes)} runtimes loaded, the kernels' threads compete with torch's: {', '.join(runtimes)}"
