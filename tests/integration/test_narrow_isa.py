"""The numerical kernel tests on kernels built for narrower CPUs than this one.

HARNESS_NATIVE_MARCH replaces -march=native (cpu_engine/native.py): x86-64-v3 is AVX2 + FMA
without AVX-512 (the AVX2 paths of simd.h, gemm.c and the training kernels), x86-64-v2 has no AVX2, so
no kernel family has its fast path (cpu_engine/features.py) and torch runs them all. Each level reruns
the kernel test files in a child pytest with its own HARNESS_HOME, so the narrow build never mixes with
the native one; the AVX2 build must also give the AVX-512 build's bits, kernel by kernel.
About a minute per level on 2 cores: marked slow (`make test` runs the slow tier in its second pass;
`pytest -m slow tests/integration/test_narrow_isa.py` alone).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cpu_engine import features, native

REPO = Path(__file__).resolve().parents[2]
KERNEL_TESTS = ["tests/integration/test_fused.py", "tests/integration/test_decode_kernels.py"]
LEVELS = {"x86-64-v3": "AVX2 + FMA, no AVX-512", "x86-64-v2": "no AVX2: torch runs every kernel family"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="the x86-64 ISA levels"),
    pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None, reason="no C compiler"),
]


def built_library(tmp_path: Path, march: str | None) -> Path:
    """Build the decoder kernels in a fresh HARNESS_HOME with (or without) the override; the .so path."""
    env = {**os.environ, "HARNESS_HOME": str(tmp_path)}
    env.pop(native.MARCH_VARIABLE, None)
    if march:
        env[native.MARCH_VARIABLE] = march
    code = (
        "from cpu_engine import native; native.library(); "
        "print(native._target(native.SOURCES, native.HEADERS, 'kernels'))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump")
def test_the_override_builds_code_without_avx512(tmp_path):
    narrow = built_library(tmp_path / "v3", "x86-64-v3")
    assert "zmm" not in subprocess.run(["objdump", "-d", str(narrow)], capture_output=True, text=True).stdout
    native_build = built_library(tmp_path / "native", None)
    assert native_build.name != narrow.name  # the flags are part of the build key


@pytest.mark.parametrize("march", list(LEVELS))
def test_kernel_tests_hold_on_a_narrower_build(march, tmp_path):
    env = {**os.environ, native.MARCH_VARIABLE: march, "HARNESS_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *KERNEL_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, f"{march} ({LEVELS[march]}):\n{done.stdout[-3000:]}"


# Every kernel the AVX2 build shares with the AVX-512 one, on fixed inputs; the child saves the outputs.
OUTPUTS = """
import sys, torch
from training import fused
from cpu_engine import features, native

lib = native.library()
g = torch.Generator().manual_seed(0)
out = {"level": min(features.cpu_level(), lib.simd_level())}
rows, kv, nq, d, cap = 5, 2, 6, 64, 96
kc, vc = torch.randn(rows, kv, cap, d, generator=g), torch.randn(rows, kv, cap, d, generator=g)
q = torch.randn(rows, kv, nq, d, generator=g)
limit = torch.randint(1, cap, (rows, nq), generator=g)
out["attend"] = native.attend(q, kc, vc, limit, d**-0.5)
w, x = torch.randn(960, 576, generator=g) / 24, torch.randn(13, 576, generator=g)
out["gemm"] = native.gemm(x, native.pack_panels(w))
out["residual_norm"] = native.residual_norm(x.clone(), x.flip(0).contiguous(), w[0].clone(), 1e-5)
out["silu_mul"] = native.silu_mul(torch.randn(7, 2 * 1536, generator=g) * 8)
qkv = torch.randn(5, 10 * d, generator=g)
angles = torch.arange(cap)[:, None] * torch.rand(d // 2, generator=g)[None]
cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
kc2, vc2 = torch.zeros(4, 2, cap, d), torch.zeros(4, 2, cap, d)
out["rope_store"] = native.rope_store(qkv, cos, sin, torch.tensor([0, 3, 3, 1, 2]), torch.tensor([7, 0, 1, 31, 12]), kc2, vc2, 6)
out["rope_store_cache"] = kc2
logits = (torch.randn(9, 4099, generator=g) * 4).requires_grad_()
loss, entropy, hits = fused.token_loss(logits, torch.randint(0, 4099, (9,), generator=g))
loss.backward()
out["token_loss"], out["token_entropy"], out["token_grad"] = loss.detach(), entropy, logits.grad
torch.save(out, sys.argv[1])
"""


def kernel_outputs(tmp_path: Path, march: str | None) -> dict:
    env = {**os.environ, "HARNESS_HOME": str(tmp_path / "home")}
    env.pop(native.MARCH_VARIABLE, None)
    if march:
        env[native.MARCH_VARIABLE] = march
    saved = tmp_path / "outputs.pt"
    done = subprocess.run(
        [sys.executable, "-c", OUTPUTS, str(saved)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(saved)


@pytest.mark.skipif("avx512f" not in (features.cpu_flags() or ()), reason="no AVX-512: one build only")
def test_the_avx2_build_gives_the_avx512_builds_bits(tmp_path):
    wide, narrow = kernel_outputs(tmp_path / "native", None), kernel_outputs(tmp_path / "v3", "x86-64-v3")
    assert (wide.pop("level"), narrow.pop("level")) == (features.AVX512, features.AVX2)
    differ = [
        name for name in wide if not torch.equal(wide[name].view(torch.int32), narrow[name].view(torch.int32))
    ]
    assert differ == [], f"the AVX2 build rounds these kernels differently: {differ}"
