"""The project's own regression gate: the `ci` profile (the whole compare pipeline on the tiny random
model) must reproduce the committed baseline item by item. A change to checkers, prompts, tasks or
training that moves any score fails here until the baseline is re-recorded on purpose: `make baseline`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from ci_compare import isolated_home

BASELINE = Path(__file__).resolve().parents[2] / "reports" / "baselines" / "ci-tiny.json"


def harness(*args, home: Path):
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HARNESS_HOME": str(isolated_home(home))},
        timeout=1800,
    )


def _same_scores(now: dict, recorded: dict) -> bool:
    """0/1 verdicts must match exactly; continuous scores (TruthfulQA-MC2 probabilities) within float
    rounding, which the matmul's thread split on a given machine can move in the 6th digit."""
    return now.keys() == recorded.keys() and all(
        math.isclose(now[k], v, rel_tol=1e-4, abs_tol=1e-9) if v not in (0.0, 1.0) else now[k] == v
        for k, v in recorded.items()
    )


def test_ci_profile_matches_the_committed_baseline(tmp_path, data_dir):
    run = tmp_path / "run"
    proc = harness(
        "compare",
        "--profile",
        "ci",
        "-o",
        str(run),
        "--report-dir",
        str(tmp_path / "report"),
        home=tmp_path / "home",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    gate = harness("gate", str(run), "--baseline", str(BASELINE), home=tmp_path / "home")
    assert gate.returncode == 0, gate.stdout[-3000:] + gate.stderr[-2000:]
    harness("gate", "record", str(run), "-o", str(tmp_path / "now.json"), home=tmp_path / "home")
    now = json.loads((tmp_path / "now.json").read_text())["labels"]
    recorded = json.loads(BASELINE.read_text())["labels"]
    moved = [
        f"{label}.{task}"
        for label, entry in recorded.items()
        for task, t in entry["tasks"].items()
        if not _same_scores(now[label]["tasks"][task]["items"], t["items"])
    ]
    assert not moved, f"scores moved on {moved}: re-record with `make baseline` if intended"
