"""`harness eval` end to end on a tiny random llama: every benchmark, offline, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.registry import BENCHMARKS


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args], capture_output=True, text=True, env=env, timeout=1800
    )


@pytest.fixture(scope="module")
def eval_run(tiny_model, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "all",
        "--limit",
        "2",
        "--max-new-tokens",
        "24",
        "-o",
        str(out),
        "--label",
        "tiny",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_every_benchmark_has_results_and_samples(eval_run):
    out, proc = eval_run
    results = json.loads((out / "eval" / "tiny" / "results.json").read_text())
    assert set(results["results"]) == set(BENCHMARKS)
    for task, bench in BENCHMARKS.items():
        assert f"{bench.metric},none" in results["results"][task]
        rows = [json.loads(line) for line in (out / "eval" / "tiny" / f"samples_{task}.jsonl").open()]
        assert [r["doc_id"] for r in rows] == [0, 1]
        assert all(bench.metric in r["metrics"] for r in rows)
    assert results["model"]["fingerprint"] and results["eval_config"]["limit"] == 2
    assert "git_revision" in results and results["package_versions"]["torch"]
    assert (out / "eval" / "tiny" / "table.md").read_text().startswith("| benchmark")
    assert "| math500 | exact_match | 2 |" in proc.stdout


def test_gpqa_never_written_in_plain_text(eval_run, data_dir):
    from harness.data import load_gpqa

    out, _ = eval_run
    questions = [row["question"] for row in load_gpqa()[:2]]
    for file in out.rglob("*"):
        if file.is_file():
            text = file.read_text(errors="ignore")
            assert not any(q[:60] in text for q in questions), file


def test_rerun_regenerates_nothing(eval_run, tiny_model, tmp_path):
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "math500,ifeval",
        "--limit",
        "2",
        "--max-new-tokens",
        "24",
        "-o",
        str(tmp_path),
        "--label",
        "tiny",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, again = eval_run[0] / "eval" / "tiny", tmp_path / "eval" / "tiny"
    for task in ("math500", "ifeval"):
        rows = [json.loads(line) for line in (again / f"samples_{task}.jsonl").open()]
        timing = [json.loads(line) for line in (again / f"timing_{task}.jsonl").open()]
        assert len(timing) == 2 and all(t["cached"] for t in timing)
        old = [json.loads(line) for line in (first / f"samples_{task}.jsonl").open()]
        assert [r["response"] for r in rows] == [r["response"] for r in old]


def test_quantize_reaches_the_engine_from_the_cli(tiny_model, data_dir, tmp_path):
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "math500",
        "--limit",
        "2",
        "--max-new-tokens",
        "8",
        "--quantize",
        "bf16",
        "-o",
        str(tmp_path),
        "--label",
        "tiny",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "eval" / "tiny" / "results.json").read_text())
    assert results["model"]["fingerprint"].endswith(":bf16")
    bad = run_cli("eval", "--model", str(tiny_model), "--quantize", "fp8", "-o", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "quantize" in bad.stderr and "Traceback" not in bad.stderr
