"""The decode-attention kernel (attend.c): built once per machine with the system C compiler, loaded with ctypes.

It links the OpenMP runtime torch already loaded (same soname), so its threads are torch's threads
rather than a second pool spinning against them. Without a compiler, or with HARNESS_NATIVE=0, the
decoder uses torch's SDPA instead: the same results to float rounding; on the 64-prompt generation
benchmark the whole run was about 15 % slower that way (docs/performance.md).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("attend.c")
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno"]


@lru_cache(maxsize=1)
def kernel():
    """The loaded `attend` function, or None when it cannot be built or is switched off."""
    if os.environ.get("HARNESS_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler: decode attention runs on torch SDPA")
        return None
    from harness.errors import HarnessError

    try:
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, subprocess.CalledProcessError, HarnessError) as exc:
        log.warning("could not build the attention kernel (%s): using torch SDPA", exc)
        return None
    fn = lib.attend
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 5 + [ctypes.c_float]
    return fn


def describe() -> str:
    """One line for `harness setup` and logs: which attention the decoder uses here."""
    if kernel() is None:
        return "torch SDPA (native kernel off or not buildable; HARNESS_NATIVE=0 turns it off)"
    return f"native kernel {_target()}"


def _target() -> Path:
    from harness.paths import harness_home

    # -march=native code is only valid on this CPU: the CPU's flags are part of the key.
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_flags().encode()).hexdigest()[:16]
    return harness_home() / "native" / f"attend-{platform.machine()}-{key}.so"


def _build(compiler: str) -> Path:
    from harness.io import atomic_write_bytes

    target = _target()
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "attend.so"
        subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(built)], check=True, capture_output=True)
        atomic_write_bytes(target, built.read_bytes())
    return target


def _cpu_flags() -> str:
    try:
        return next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def attend(q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, limit: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention of q [rows, kv_heads, nq, d] over cache slots [0, rows) of kc/vc [slots, kv_heads, capacity, d];
    query row (j, r) sees columns [0, limit[j, r])."""
    rows, heads, nq, d = q.shape
    out = torch.empty_like(q)
    kernel()(q.data_ptr(), kc.data_ptr(), vc.data_ptr(), limit.data_ptr(), out.data_ptr(),
             rows, heads, nq, d, kc.shape[2], scale)
    return out
