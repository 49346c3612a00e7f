"""The typed config: profiles and --set over the stage dataclasses, numbers as people write them,
the teacher's options, the vLLM engine keys, and every value checked before any stage runs."""

from __future__ import annotations

import pytest

from harness.config import available_profiles, schema_keys
from harness.errors import HarnessError
from harness_app.run_config import RunConfig, resolve


@pytest.mark.parametrize("raw, value", [("5e-5", 5e-5), ("1.0e-3", 1e-3), ("2", 2.0), ("-1E-4", -1e-4)])
def test_learning_rate_in_any_float_notation(raw, value):
    if value < 0:
        with pytest.raises(HarnessError, match=r"train.learning_rate=-0.0001: must be >= 0"):
            resolve("smoke", [f"train.learning_rate={raw}"])
        return
    config = resolve("smoke", [f"train.learning_rate={raw}"])
    assert config.train.learning_rate == value and isinstance(config.train.learning_rate, float)


def test_a_float_key_still_refuses_words():
    with pytest.raises(HarnessError, match="expected float"):
        resolve("smoke", ["train.learning_rate=fast"])


def test_every_key_has_help_and_the_profiles_resolve():
    keys = schema_keys(RunConfig)
    assert {
        "train.learning_rate",
        "teacher.temperature",
        "eval.vllm.max_model_len",
        "analysis.margin",
    } <= set(keys)
    assert not [k for k in keys.values() if not k.help], "every config key documents itself"
    assert "seed" not in {k.path.split(".")[-1] for k in keys.values() if "." in k.path}  # set by the run
    for profile in available_profiles():
        assert resolve(profile).profile == profile


def test_teacher_options_reach_the_build_and_unset_ones_keep_the_teacher_default():
    config = resolve(
        "smoke",
        [
            "teacher.model=openai:http://127.0.0.1:8000/v1#m",
            "teacher.temperature=0.7",
            "teacher.concurrency=32",
            "teacher.api_key_env=MY_KEY",
            "teacher.timeout_s=60",
            "teacher.max_new_tokens=2048",
        ],
    )
    assert config.build_config().teacher_options == {
        "temperature": 0.7,
        "max_new_tokens": 2048,
        "concurrency": 32,
        "api_key_env": "MY_KEY",
        "timeout_s": 60.0,
    }
    assert resolve("smoke", []).build_config().teacher_options == {}


def test_vllm_engine_keys_are_in_the_schema():
    config = resolve(
        "smoke",
        [
            "eval.vllm.tensor_parallel_size=4",
            "eval.vllm.gpu_memory_utilization=0.9",
            "eval.vllm.max_model_len=8192",
            "eval.vllm.dtype=bfloat16",
            "eval.vllm.enforce_eager=false",
        ],
    )
    assert config.as_dict()["eval"]["vllm"] == {
        "tensor_parallel_size": 4,
        "data_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "max_model_len": 8192,
        "kv_cache_memory_bytes": None,
        "dtype": "bfloat16",
        "enforce_eager": False,
    }
    with pytest.raises(HarnessError, match="expected int"):
        resolve("smoke", ["eval.vllm.tensor_parallel_size=two"])
    with pytest.raises(HarnessError, match="dtype"):
        resolve("smoke", ["eval.vllm.dtype=fp8"])


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.max_steps=-3", r"train.max_steps=-3: must be >= 1"),
        ("train.lr_scheduler=sawtooth", "choose one of linear, cosine"),
        ("eval.limit=0", r"eval.limit=0: must be >= 1"),
        ("eval.benchmarks=math501", "unknown benchmark 'math501'"),
        ("analysis.multiplicity=bonferroni", "choose one of holm, bh, none"),
        ("methods=sft,cdg", "unknown method cdg"),
        ("data.n_problem=3", "unknown key 'data.n_problem'"),
        ("seeds=", "seeds: may not be null"),
    ],
)
def test_bad_values_are_refused_with_their_key(item, message):
    with pytest.raises(HarnessError, match=message):
        resolve("smoke", [item])


def test_lists_and_mappings_from_the_command_line():
    config = resolve("smoke", ["data.levels=1,2", "data.columns.question=prompt", "methods=sft,cgd"])
    assert config.data.levels == [1, 2] and config.methods == ["sft", "cgd"]
    assert config.data.column_map()["question"] == "prompt" and config.data.column_map()["answer"] == "answer"


def test_the_run_id_follows_the_resolved_values_not_how_they_were_written():
    assert resolve("smoke", ["train.learning_rate=1e-5"]).run_id() == resolve("smoke").run_id()
    assert resolve("smoke", ["train.learning_rate=2e-5"]).run_id() != resolve("smoke").run_id()


def test_describe_prints_every_key_with_its_help():
    from harness.config import describe

    text = describe(resolve("cpu-small", ["train.learning_rate=5e-5"]))
    assert "learning_rate: 5.0e-05  # peak learning rate" in text
    assert "  vllm:  # the engine of `backend: vllm`" in text


def test_dry_run_prints_the_paper_plan_offline_and_writes_nothing(tmp_path, data_dir):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness_app",
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
        (["teacher.timeout_s=soon"], "teacher.timeout_s: expected float"),
        (["teacher.temperature=hot"], "teacher.temperature: expected float"),
        (
            ["teacher.model=hf:tiny-random", "teacher.concurrency=4"],
            "unknown option concurrency for the hf teacher",
        ),
        (["train.max_steps=-3"], r"train.max_steps=-3: must be >= 1"),
        (
            ["backend=vllm", "eval.vllm.data_parallel_size=2"],
            r"run 2 processes with `harness eval --shard K/2`",
        ),
    ],
)
def test_bad_teacher_or_engine_options_stop_compare_before_any_work(sets, message, tmp_path):
    from typer.testing import CliRunner

    from harness_app.cli import app

    args = ["compare", "-o", str(tmp_path / "run"), "--set", "teacher.model=openai:http://127.0.0.1:9/v1#m"]
    result = CliRunner().invoke(app, args + [x for s in sets for x in ("--set", s)])
    assert isinstance(result.exception, HarnessError) and result.exception.args[0]
    assert __import__("re").search(message, str(result.exception))
    assert not (tmp_path / "run").exists()
