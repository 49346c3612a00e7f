"""Where things live: the cache home, the offline data directory, the task definitions."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def harness_home() -> Path:
    home = Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "cgd-harness")
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_dir() -> Path | None:
    """The offline data directory ($HARNESS_DATA_DIR), or None to load from the Hugging Face Hub."""
    value = os.environ.get("HARNESS_DATA_DIR")
    return Path(value).expanduser() if value else None


def tasks_dir() -> Path:
    return Path(os.environ.get("HARNESS_TASKS_DIR") or REPO_ROOT / "tasks")


def nltk_data_dir() -> Path:
    return harness_home() / "nltk_data"
