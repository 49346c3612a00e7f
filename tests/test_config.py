"""Profiles and --set: numbers as people write them, the teacher's options, the vLLM engine keys."""

from __future__ import annotations

import pytest

from harness.compare import _build_config
from harness.config import resolve_config
from harness.errors import HarnessError


@pytest.mark.parametrize("raw, value", [("5e-5", 5e-5), ("1.0e-3", 1e-3), ("2", 2.0), ("-1E-4", -1e-4)])
def test_learning_rate_in_any_float_notation(raw, value):
    config = resolve_config("smoke", [f"train.learning_rate={raw}"])
    assert config["train"]["learning_rate"] == value and isinstance(config["train"]["learning_rate"], float)


def test_a_float_key_still_refuses_words():
    with pytest.raises(HarnessError, match="expected float"):
        resolve_config("smoke", ["train.learning_rate=fast"])


def test_teacher_options_reach_the_build_and_unset_ones_keep_the_teacher_default():
    config = resolve_config(
        "smoke",
        [
            "teacher=openai:http://127.0.0.1:8000/v1#m",
            "teacher_options.temperature=0.7",
            "teacher_options.concurrency=32",
            "teacher_options.api_key_env=MY_KEY",
            "teacher_options.timeout_s=60",
            "teacher_options.max_new_tokens=2048",
        ],
    )
    assert _build_config(config).teacher_options == {
        "temperature": 0.7,
        "max_new_tokens": 2048,
        "concurrency": 32,
        "api_key_env": "MY_KEY",
        "timeout_s": 60,
    }
    assert _build_config(resolve_config("smoke", [])).teacher_options == {}


def test_vllm_engine_keys_are_in_the_schema():
    config = resolve_config(
        "smoke",
        [
            "eval.vllm.tensor_parallel_size=4",
            "eval.vllm.gpu_memory_utilization=0.9",
            "eval.vllm.max_model_len=8192",
        ],
    )
    assert config["eval"]["vllm"] == {
        "tensor_parallel_size": 4,
        "data_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "max_model_len": 8192,
    }
    with pytest.raises(HarnessError, match="expected int"):
        resolve_config("smoke", ["eval.vllm.tensor_parallel_size=two"])


def test_dry_run_prints_the_paper_plan_offline_and_writes_nothing(tmp_path, data_dir):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "compare",
            "--profile",
            "paper",
            "--dry-run",
            "--set",
            "eval.vllm.tensor_parallel_size=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "student: meta-llama/Llama-3.1-8B-Instruct (backend vllm)" in out
    assert "3 run(s) (sft, cft, cgd), 1562 optimizer steps" in out
    assert (
        "evaluation: 2 per vLLM replica x 1 replica(s) = 2 (vLLM takes 85% of each; max_model_len 8192)"
        in out
    )
    assert "math500            500" in out and "per model: 3305 items; all models: 13220" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "sets, message",
    [
        (["teacher_options.timeout_s=soon"], "openai teacher: bad option value"),
        (["teacher_options.temperature=hot"], "teacher: bad sampling option value"),
        (
            ["teacher=hf:tiny-random", "teacher_options.concurrency=4"],
            "unknown option concurrency for the hf teacher",
        ),
        (
            ["backend=vllm", "eval.vllm.data_parallel_size=2"],
            r"run 2 processes with `harness eval --shard K/2`",
        ),
    ],
)
def test_bad_teacher_or_engine_options_stop_compare_before_any_work(sets, message, tmp_path):
    from harness.compare import compare

    with pytest.raises(HarnessError, match=message):
        compare("smoke", ["teacher=openai:http://127.0.0.1:9/v1#m", *sets], output=tmp_path / "run")
    assert not (tmp_path / "run").exists()
