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
        "harness_app",
        "compare",
        *SMALL,
        *extra,
        "-o",
        str(run),
        "--report-dir",
        str(report),
    ]


# Built once per test session and shared by every subprocess's own HARNESS_HOME: the compiled kernels,
# converted models (the tiny one included) and NLTK data. Generation caches stay per home, so a test
# of what a cold run does still starts cold.
SHARED_BUILDS = ("native", "models", "nltk_data")


def isolated_home(home: Path) -> Path:
    """A fresh HARNESS_HOME that links to the session's builds (conftest sets the session home)."""
    session = Path(os.environ["HARNESS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    for name in SHARED_BUILDS:
        (session / name).mkdir(parents=True, exist_ok=True)
        if not (home / name).exists():
            (home / name).symlink_to(session / name, target_is_directory=True)
    return home


def run(cmd, home: Path, timeout=1500):
    env = {**os.environ, "HARNESS_HOME": str(isolated_home(home))}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
