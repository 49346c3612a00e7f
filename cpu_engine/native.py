"""The decoder's native kernels, built once per machine with the system C compiler, loaded with ctypes:
decode attention (attend.c), the linear layers' matmul (gemm.c) and the elementwise steps between them
(elementwise.c: residual add + RMSNorm, SiLU gate, RoPE + KV cache store).

They link the OpenMP runtime torch already loaded (same soname), so their threads are torch's threads
rather than a second pool spinning against them (features.openmp_check says so at load). A kernel
family runs only where features.fast_path says its vector path exists here; without it, without a
compiler, or with HARNESS_NATIVE=0, the decoder uses torch's SDPA, oneDNN and torch ops instead: the
same results to float rounding, slower (the measurements are in docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache, lru_cache
from pathlib import Path

import torch

from cpu_engine import features

log = logging.getLogger(__name__)
SOURCES = [Path(__file__).with_name(name) for name in ("attend.c", "gemm.c", "elementwise.c")]
HEADERS = [Path(__file__).with_name("simd.h")]  # included by the sources: part of the build's key
PANEL = 16  # output columns per packed weight panel (gemm.c's NR)
# -ffp-contract=off: a multiply and an add stay two roundings, as in torch (RoPE and the residual add
# must give torch's bits); the kernels' explicit FMAs are unaffected.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off"]
# HARNESS_NATIVE_MARCH=x86-64-v3 (AVX2 + FMA) or x86-64-v2 (no AVX2: the scalar paths) builds the
# kernels for a narrower CPU than this one, so the AVX-512 machines here can test the code paths an
# AVX2-only CPU runs (tests/integration/test_narrow_isa.py). It is part of the build key, like every flag.
MARCH_VARIABLE = "HARNESS_NATIVE_MARCH"


def flags() -> list[str]:
    march = os.environ.get(MARCH_VARIABLE, "").strip()
    return [f"-march={march}" if f == "-march=native" and march else f for f in FLAGS]


@lru_cache(maxsize=1)
def library():
    """The loaded kernel library, or None when it cannot be built or is switched off."""
    lib = load(SOURCES, HEADERS, "kernels", "the decoder runs on torch SDPA and oneDNN")
    if lib is None:
        return None
    lib.attend.restype = lib.gemm.restype = None
    lib.attend.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 5 + [ctypes.c_float]
    lib.gemm.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3
    lib.residual_norm.restype = lib.silu_mul.restype = lib.rope_store.restype = None
    lib.residual_norm.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 2 + [ctypes.c_float]
    lib.silu_mul.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 2
    lib.rope_store.argtypes = [ctypes.c_void_p] * 8 + [ctypes.c_int64] * 5
    line = features.openmp_check(lib)
    (log.warning if "compete" in line else log.info)("%s", line)
    return lib


@cache
def retain_freed_memory(any_size: bool = False) -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB (every size with `any_size`) for reuse instead
    of handing them back to the system (process-wide; glibc only). Why: a prefill allocates tens of MB
    of activations per layer, and each block handed back returns as fresh pages that the kernel must
    fault in and zero. A training step also frees buffers of hundreds of MB (the logits and their
    gradient, the embedding's gradient). docs/performance.md ("Design figures") has what it saves in
    both. Returns whether the settings took."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim, mmap, mmap_max = -1, -3, -4  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX (malloc.h)
        if any_size:
            return bool(libc.mallopt(trim, -1)) and bool(libc.mallopt(mmap_max, 0))  # -1: never trim
        return bool(libc.mallopt(trim, 1 << 30)) and bool(libc.mallopt(mmap, 32 << 20))
    except (OSError, AttributeError):
        return False


def kernel(head_dim: int | None = None):
    """The `attend` function where its vector path runs here (features.fast_path), or None."""
    lib = library()
    return lib.attend if features.fast_path("attention", lib, head_dim) else None


def elementwise_available() -> bool:
    """Whether residual_norm, silu_mul and rope_store take their vector paths here."""
    return features.fast_path("elementwise", library())


def gemm_kernel():
    """The `gemm` function, or None: it needs AVX2 and FMA (features.fast_path); HARNESS_NATIVE_GEMM=0
    leaves the matmuls alone to oneDNN."""
    lib = library()
    if not features.fast_path("gemm", lib) or os.environ.get("HARNESS_NATIVE_GEMM", "1") == "0":
        return None
    return lib.gemm


def describe() -> str:
    """One line for `harness setup` and logs: which kernels the decoder uses here."""
    if kernel() is None:
        return (
            "torch SDPA and oneDNN (native kernels off, not buildable or without their AVX2/FMA fast path "
            "here; HARNESS_NATIVE=0 turns them off)"
        )
    matmul = "native" if gemm_kernel() is not None else "oneDNN (no AVX2/FMA)"
    return f"native attention, {matmul} matmul: {_target(SOURCES, HEADERS, 'kernels')}"


def build_library(sources: list[Path], stem: str, fallback: str) -> ctypes.CDLL | None:
    """A C library of another package's kernels built against the engine's simd.h (load, below), with
    its simd_level() declared for features.fast_path."""
    return load(sources, HEADERS, stem, fallback)


def load(sources: list[Path], headers: list[Path], stem: str, fallback: str) -> ctypes.CDLL | None:
    """A C library built from `sources` with the system compiler (once per machine, CPU and source text)
    and loaded, or None, logging `fallback` (what runs instead), when HARNESS_NATIVE=0 or it cannot
    be built."""
    if os.environ.get("HARNESS_NATIVE", "1") == "0":
        return None
    if features.cpu_level() < features.AVX2:
        log.info("no AVX2/FMA on this CPU, so no kernel's fast path: %s", fallback)
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler: %s", fallback)
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler, sources, headers, stem)))
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("could not build %s (%s): %s", stem, exc, fallback)
        return None
    lib.simd_level.restype, lib.simd_level.argtypes = ctypes.c_int, []
    return lib


def cache_dir() -> Path:
    """Where built libraries live: `native/` in the library's home. The engine imports nothing of the
    library, so it reads the same variable and default as harness.paths.harness_home (tests/unit/test_layers.py
    checks that the two agree)."""
    return Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "cgd-harness") / "native"


def _target(sources: list[Path], headers: list[Path], stem: str) -> Path:
    # -march=native code is only valid on this CPU: the CPU's flags are part of the key.
    code = b"".join(p.read_bytes() for p in sources + headers)
    key = hashlib.sha256(code + " ".join(flags()).encode() + _cpu_flags().encode()).hexdigest()[:16]
    return cache_dir() / f"{stem}-{platform.machine()}-{key}.so"


def _build(compiler: str, sources: list[Path], headers: list[Path], stem: str) -> Path:
    target = _target(sources, headers, stem)
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / f"{stem}.so"
        subprocess.run(
            [compiler, *flags(), *map(str, sources), "-o", str(built)], check=True, capture_output=True
        )
        # Built aside, then renamed into place: two processes building at once each install a whole library.
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(built.read_bytes())
            os.replace(staged, target)
        finally:
            Path(staged).unlink(missing_ok=True)
    return target


def _cpu_flags() -> str:
    try:
        return next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def attend(
    q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, limit: torch.Tensor, scale: float
) -> torch.Tensor:
    """Attention of q [rows, kv_heads, nq, d] over cache slots [0, rows) of kc/vc [slots, kv_heads, capacity, d];
    query row (j, r) sees columns [0, limit[j, r])."""
    rows, heads, nq, d = q.shape
    out = torch.empty_like(q)
    kernel()(
        q.data_ptr(),
        kc.data_ptr(),
        vc.data_ptr(),
        limit.data_ptr(),
        out.data_ptr(),
        rows,
        heads,
        nq,
        d,
        kc.shape[2],
        scale,
    )
    return out


def pack_panels(weight: torch.Tensor) -> torch.Tensor | None:
    """weight [N, K] as gemm.c reads it, [N/16, K, 16]; None where the native matmul cannot take it."""
    n = weight.shape[0]
    if (
        weight.device.type != "cpu"
        or weight.dtype != torch.float32
        or weight.dim() != 2
        or n % PANEL
        or gemm_kernel() is None
    ):
        return None
    return weight.detach().reshape(n // PANEL, PANEL, -1).transpose(1, 2).contiguous()


def gemm(x: torch.Tensor, panels: torch.Tensor) -> torch.Tensor:
    """x [..., K] times the packed weight's transpose: [..., N]."""
    k = panels.shape[1]
    flat = x.reshape(-1, k).contiguous()
    out = torch.empty(flat.shape[0], panels.shape[0] * PANEL, dtype=x.dtype)
    # Panels exist only where gemm_kernel() allowed them, so the per-call checks are not repeated here.
    library().gemm(flat.data_ptr(), panels.data_ptr(), out.data_ptr(), flat.shape[0], out.shape[1], k)
    return out.view(*x.shape[:-1], out.shape[1])


def residual_norm(
    x: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> torch.Tensor:
    """x += delta in place (when given), then x's RMSNorm: x [rows, dim] contiguous, weight [dim]."""
    h = torch.empty_like(x)
    delta = None if delta is None else delta.contiguous()  # held until the call returns
    library().residual_norm(
        x.data_ptr(),
        None if delta is None else delta.data_ptr(),
        weight.data_ptr(),
        h.data_ptr(),
        x.shape[0],
        x.shape[1],
        eps,
    )
    return h


def silu_mul(gu: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up for gu = [gate | up] [rows, 2 * inter], contiguous."""
    rows, inter = gu.shape[0], gu.shape[1] // 2
    out = torch.empty(rows, inter, dtype=gu.dtype)
    library().silu_mul(gu.data_ptr(), out.data_ptr(), rows, inter)
    return out


def rope_store(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    slot: torch.Tensor,
    pos: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    heads: int,
) -> torch.Tensor:
    """Each token's query heads rotated, [tokens, heads, d]; its rotated keys and its values go into slot[t],
    position pos[t] of kc/vc [slots, kv_heads, capacity, d]. cos, sin: [positions, d] tables."""
    kv_heads, capacity, d = kc.shape[1], kc.shape[2], kc.shape[3]
    q = torch.empty(qkv.shape[0], heads, d, dtype=qkv.dtype)
    library().rope_store(
        qkv.data_ptr(),
        cos.data_ptr(),
        sin.data_ptr(),
        slot.data_ptr(),
        pos.data_ptr(),
        q.data_ptr(),
        kc.data_ptr(),
        vc.data_ptr(),
        qkv.shape[0],
        heads,
        kv_heads,
        d,
        capacity,
    )
    return q
