"""What both benchmark scripts share: environment set-up, alternating repeats, one child per run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def add_common_args(p) -> None:
    p.add_argument("--model", default="smollm2-135m")
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
