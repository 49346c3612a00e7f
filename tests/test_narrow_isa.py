"""The numerical kernel tests on kernels built for narrower CPUs than this one.

HARNESS_NATIVE_MARCH replaces -march=native (cpu_engine/native.py): x86-64-v3 is AVX2 + FMA
without AVX-512 (the AVX2 paths of simd.h, gemm.c and the training kernels), x86-64-v2 has no AVX2
(the scalar paths, and the matmuls left to oneDNN). Each level reruns the kernel test files in a
child pytest with its own HARNESS_HOME, so the narrow build never mixes with the native one.
About a minute per level on 2 cores: marked slow (`make test` runs the slow tier in its second pass;
`pytest -m slow tests/test_narrow_isa.py` alone).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cpu_engine import native

REPO = Path(__file__).resolve().parent.parent
KERNEL_TESTS = ["tests/test_fused.py", "tests/test_decode_kernels.py"]
LEVELS = {"x86-64-v3": "AVX2 + FMA, no AVX-512", "x86-64-v2": "no AVX2: scalar kernels"}

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
