"""What both benchmark scripts share: environment set-up, alternating repeats, one child per run."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.defaults import DEFAULT_MODEL


def add_common_args(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--repeats", type=int, default=2)
    # "default" leaves OpenMP as the harness leaves it (libgomp spins briefly, then sleeps): what a user
    # gets. "passive" suits a box shared with other jobs: oversubscribed spinning workers stall each
    # other (measured up to 5x on a decode step here), but every small op then pays a thread wake-up.
    p.add_argument("--omp-wait-policy", default="default", choices=["passive", "active", "default"])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)


def set_up_parent(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.omp_wait_policy != "default":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()


def measure(
    script: str, names: list[str], repeats: int, argv: list[str], show: Callable[[int, str, dict], None]
) -> dict[str, list[dict]]:
    """Each name once per repeat, each in its own child of `script`; the order reverses on odd
    repeats (the machine drifts). `show(repeat, name, result)` after every run."""
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            runs[name].append(_run_child(script, name, argv))
            show(rep + 1, name, runs[name][-1])
    return runs


def _run_child(script: str, name: str, argv: list[str]) -> dict:
    """`script --child name --out <tmp> argv...` in a fresh process (clean peak memory); its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run([sys.executable, script, "--child", name, "--out", str(out), *argv], check=True)
        return json.loads(out.read_text())


def matmul_rate(
    threads: int | None, device: str = "cpu", dtype: str = "float32", reps: int = 12
) -> tuple[float, float]:
    """(best, median) GFLOP/s of an n x n x n matmul in the run's dtype: on the benchmark's CPU threads
    (n = 1024), or on the GPU (n = 8192, large enough to reach its peak)."""
    import torch

    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    n = 1024 if device == "cpu" else 8192
    a, b = (torch.randn(n, n, device=device, dtype=getattr(torch, dtype)) for _ in range(2))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    flop = 2 * n**3 / 1e9
    return flop / min(times), flop / statistics.median(times)
