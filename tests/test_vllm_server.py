"""Opt-in: the project against a real OpenAI-compatible server, vLLM's CPU build serving SmolLM2-135M.

`make test-vllm` starts the server (scripts/vllm_cpu_server.sh) and runs these with HARNESS_VLLM_URL
set; `make test` leaves them out. The fake server in test_teachers.py pins the HTTP handling; these
check that a real server's answers (its chat template, usage counts, finish reasons) flow through the
same stages. The served model is tiny, so they check plumbing, never answer quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cgd import prompts
from harness.backends.openai import OpenAIBackend

pytestmark = pytest.mark.vllm

SERVED_NAME = "smollm2-135m"  # --served-model-name in scripts/vllm_cpu_server.sh
MAX_NEW_TOKENS = 256  # enough for a critique to reach its verdict line; keeps CPU decoding short


@pytest.fixture(scope="module")
def spec() -> str:
    url = os.environ.get("HARNESS_VLLM_URL")
    if not url:
        pytest.skip(
            "HARNESS_VLLM_URL is not set: run `make test-vllm`, which starts the vLLM CPU server and sets it"
        )
    return f"openai:{url.rstrip('/')}#{SERVED_NAME}"


@pytest.fixture
def http_posts(monkeypatch) -> list[str]:
    """The URL of every request the OpenAI backend sends, in order."""
    sent: list[str] = []
    real_post = OpenAIBackend._post

    def counting_post(self, url, body, headers):
        sent.append(url)
        return real_post(self, url, body, headers)

    monkeypatch.setattr(OpenAIBackend, "_post", counting_post)
    return sent


def teach_two_problems(run_root, spec: str) -> tuple[list[dict], dict]:
    """The build's problems → probe → teach stages on 2 training problems, student and teacher served."""
    from cgd.pipeline import ANNOTATIONS, ATTEMPTS, TRAIN_PROBLEMS, BuildConfig, problems_stage, teach_stage
    from cgd.probe import probe
    from cgd.problems import ProblemsConfig
    from cgd.teachers import load_annotations
    from harness.backends import make_backend
    from harness.io import atomic_write_jsonl, read_jsonl
    from harness.run import RunDir

    run = RunDir(run_root)
    cfg = BuildConfig(
        methods=["cgd"],
        teacher=spec,
        teacher_options={"max_new_tokens": MAX_NEW_TOKENS},
        problems=ProblemsConfig(n_problems=2, n_val=0, seed=0),
    )
    problems_stage(run, cfg)
    # probe_stage resolves the student as a local model to fingerprint it; the served student answers
    # through the same probe() instead, and its attempts go to the same file.
    attempts = probe(read_jsonl(run.path(TRAIN_PROBLEMS)), make_backend(spec), MAX_NEW_TOKENS)
    atomic_write_jsonl(run.path(ATTEMPTS), attempts)
    teach_stage(run, cfg)
    return load_annotations(run.path(ANNOTATIONS))


def test_openai_teacher_critiques_and_refines_then_answers_from_the_cache(
    spec, data_dir, tmp_path, http_posts
):
    rows, meta = teach_two_problems(tmp_path / "first", spec)
    # 2 probe answers, 2 critiques, 2 refinements: one request each, none retried.
    assert sorted(u.rsplit("/v1/", 1)[1] for u in http_posts) == ["chat/completions"] * 6
    assert len(rows) == 2
    for row in rows:
        assert row["attempt"].strip() and row["critique"].strip() and row["refined"].strip()
        assert row["critique_tokens"] > 0 and row["refined_tokens"] > 0  # the server's usage counts
        # The verdict column is the critique's verdict line as the project parses it. A 135M model
        # does not reliably write that line, so None ("no verdict") is allowed here; the reference
        # teacher's tests pin the parsing itself.
        assert row["verdict"] is prompts.parse_verdict(row["critique"])
    assert meta["teacher"] == spec and meta["fingerprint"] == spec  # the backend's fingerprint is its spec
    assert meta["stats"]["teacher_tokens"] == sum(r["critique_tokens"] + r["refined_tokens"] for r in rows)

    # A fresh run directory with the same problems: every answer comes from the generation cache.
    http_posts.clear()
    again, _ = teach_two_problems(tmp_path / "second", spec)
    assert http_posts == []
    assert [(r["attempt"], r["critique"], r["refined"]) for r in again] == [
        (r["attempt"], r["critique"], r["refined"]) for r in rows
    ]


def test_harness_eval_on_the_served_model_writes_results(spec, data_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cgd_harness",
            "eval",
            "--backend",
            spec,
            "--benchmarks",
            "math500",
            "--limit",
            "2",
            "-o",
            str(tmp_path),
            "--label",
            "served",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "eval" / "served"
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["results"]["math500"]["exact_match,none"] <= 1.0
    assert results["model"]["backend"] == spec and results["model"]["fingerprint"] == spec
    assert results["eval_config"]["limit"] == 2
    samples = [json.loads(line) for line in (out / "samples_math500.jsonl").open()]
    assert [s["doc_id"] for s in samples] == [0, 1]
    assert all(s["response"] and s["completion_tokens"] > 0 for s in samples)
