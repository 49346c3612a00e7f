"""The small `ci`-profile compare run that several test modules read (see conftest.compare_run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SMALL = ["--profile", "ci", "--limit", "2", "--set", "eval.max_new_tokens=12", "--set", "train.max_steps=2"]


def compare_cmd(run: Path, report: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness",
        "compare",
        *SMALL,
        *extra,
        "-o",
        str(run),
        "--report-dir",
        str(report),
    ]


def run(cmd, home: Path, timeout=1500):
    env = {**os.environ, "HARNESS_HOME": str(home)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
