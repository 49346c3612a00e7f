"""Refinement uncertainty (`harness analyze`): the per-token statistics against a plain forward pass, the
analysis on a ci-style compare run, its report section, and the one-line refusal without annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ci_compare import isolated_home

from harness.io import atomic_write_json, read_json, read_jsonl

REPO = Path(__file__).resolve().parents[2]
METHODS = "sft,cgd"
SMALL = [
    "--profile",
    "ci",
    "--methods",
    METHODS,
    "--limit",
    "1",
    "--set",
    "eval.benchmarks=math500",
    "--set",
    "eval.max_new_tokens=8",
    "--set",
    "train.max_steps=1",
]


def harness(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_HOME": str(isolated_home(home)), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args], capture_output=True, text=True, env=env, timeout=900
    )


@pytest.mark.parametrize("engine", ["continuous", "generate"])
def test_token_stats_equal_a_plain_forward(tiny_model, engine):
    from harness.backends import make_backend

    backend = make_backend(str(tiny_model), "hf", cache=False, engine=engine, progress=False)
    tok = backend.tokenizer
    ctx = tok.encode("The capital of France is")
    pairs = [
        (ctx, tok.encode(" Paris, a city")),
        (ctx, tok.encode(" Lyon")),
        (tok.encode("A"), tok.encode(" B C")),
    ]
    stats = backend.token_stats(pairs)
    sums = backend.loglikelihood(pairs)
    for (c, x), (logps, entropies), (total, _) in zip(pairs, stats, sums):
        with torch.no_grad():
            logits = backend.model(torch.tensor([c + x])).logits
        logprobs = torch.log_softmax(logits[0, :-1].float(), -1)[len(c) - 1 :]
        assert logps == pytest.approx([logprobs[i, t].item() for i, t in enumerate(x)], abs=1e-4)
        expected = -(logprobs.exp() * logprobs).sum(-1)
        assert entropies == pytest.approx(expected.tolist(), abs=1e-4)
        assert sum(logps) == pytest.approx(total, abs=1e-3)  # the same numbers lm-eval's path sums


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory, data_dir):
    base = tmp_path_factory.mktemp("analyze")
    proc = harness(
        "compare", *SMALL, "-o", str(base / "run"), "--report-dir", str(base / "report"), home=base / "home"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return base


def test_compare_runs_the_analysis_and_reports_it(ci_run):
    run = ci_run / "run"
    summary = read_json(run / "analysis" / "uncertainty.json")
    n_val = len(read_jsonl(run / "problems" / "val.jsonl"))
    assert n_val == 2 and summary["n_problems"] == n_val
    assert len(read_jsonl(run / "teach" / "val_annotations.jsonl")) == n_val
    assert [m["label"] for m in summary["models"]] == ["base", "sft", "cgd"]
    for model in summary["models"]:
        for measure in ("entropy", "nll"):
            for condition in ("x", "xyc"):
                cell = model[measure][condition]
                assert cell["n"] == n_val and cell["low"] <= cell["mean"] <= cell["high"]
                assert 0 < cell["mean"] < 20  # nats per token of a 49k vocabulary: at most ln(49152) = 10.8
            assert model[measure]["critique_effect"]["n"] == n_val
    pairs = {(c["model"], c["against"]) for c in summary["comparisons"]}
    assert pairs == {("cgd", "sft"), ("cgd", "base"), ("sft", "base")}
    assert all(
        c["test"] == "sign-flip" and c["low"] <= c["delta"] <= c["high"] for c in summary["comparisons"]
    )
    csv = (run / "analysis" / "uncertainty.csv").read_text()
    assert csv.startswith("kind,model,against") and csv.count("\ncomparison,") == 12
    report = ci_run / "report"
    assert "Refinement uncertainty" in (report / "uncertainty.md").read_text()
    assert (report / "uncertainty.png").stat().st_size > 0
    assert "Refinement uncertainty" in (report / "report.html").read_text()


def test_analyze_command_resumes_and_rewrites_the_same_summary(ci_run):
    run = ci_run / "run"
    before = (run / "analysis" / "uncertainty.json").read_bytes()
    (run / "analysis" / "uncertainty.json").unlink()
    proc = harness("analyze", str(run), home=ci_run / "home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cgd - sft" in proc.stdout and "analysis:" in proc.stdout
    assert (run / "analysis" / "uncertainty.json").read_bytes() == before


def test_validation_prompt_is_the_math_benchmarks_prompt(ci_run, tiny_model):
    """Checkpoint selection asks exactly what the math500 task asked through lm-eval."""
    from transformers import AutoTokenizer

    from harness import data
    from training.selection import val_request

    record = read_jsonl(ci_run / "run" / "eval" / "base" / "samples_math500.jsonl")[0]
    problem = next(r for r in data.load_math500() if str(r["unique_id"]) == str(record["item_id"]))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    rendered = tok.apply_chat_template(
        list(val_request(problem["problem"], 8).messages), tokenize=False, add_generation_prompt=True
    )
    assert rendered == record["prompt"]


def test_a_run_without_annotations_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    atomic_write_json(
        run / "config.json",
        json.loads(json.dumps({"model": "tiny-random", "methods": ["sft"], "data": {"n_val": 2}})),
    )
    proc = harness("analyze", str(run), home=tmp_path / "home")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no teacher annotations of the validation problems" in lines[0]
    missing = harness("analyze", str(tmp_path / "nowhere"), home=tmp_path / "home")
    assert missing.returncode == 2 and "not a compare run directory" in missing.stderr
