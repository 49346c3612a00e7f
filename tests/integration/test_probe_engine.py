"""The probe opens the student's engine with the run's `eval.vllm` settings, as evaluation does.

Starting a real vLLM engine takes minutes on CPU (tests/integration/test_vllm_backend.py does it, under `-m vllm`);
here the engine's constructor records what the probe stage hands it and stops there, so the whole
path from `--set eval.vllm...` through RunConfig, BuildConfig and probe_stage to the backend runs.
"""

from __future__ import annotations

import pytest

from cgd.pipeline import probe_stage, problems_stage
from harness.run import RunDir
from harness_app.run_config import resolve

ENGINE = [
    "eval.vllm.kv_cache_memory_bytes=123456789",
    "eval.vllm.dtype=bfloat16",
    "eval.vllm.enforce_eager=false",
]


class EngineOpened(Exception):
    """Raised by the recording constructor: the arguments are known, the engine need not start."""


def probe_engine_arguments(run_root, tiny_model, monkeypatch, overrides: list[str]) -> dict:
    import harness.backends.vllm as vllm_backend

    seen = {}

    def record(resolved, **kwargs):
        seen.update(kwargs)
        raise EngineOpened

    monkeypatch.setattr(vllm_backend, "VLLMBackend", record)
    config = resolve("smoke", [f"model={tiny_model}", "backend=vllm", "data.n_problems=2", *overrides])
    run = RunDir(run_root)
    cfg = config.build_config()
    problems_stage(run, cfg)
    with pytest.raises(EngineOpened):
        probe_stage(run, cfg)
    return seen


def test_the_probe_opens_vllm_with_the_runs_eval_vllm_settings(tmp_path, data_dir, tiny_model, monkeypatch):
    seen = probe_engine_arguments(tmp_path / "run", tiny_model, monkeypatch, ENGINE)
    assert seen["kv_cache_memory_bytes"] == 123456789
    assert seen["dtype"] == "bfloat16"
    assert seen["enforce_eager"] is False
    # Every key of the section reaches the engine, as EvalConfig.backend_options gives it to evaluation.
    config = resolve("smoke", ["backend=vllm", *ENGINE])
    assert {k: seen[k] for k in config.eval.backend_options("vllm")} == config.eval.backend_options("vllm")


def test_the_probe_keeps_the_engines_own_defaults_when_unset(tmp_path, data_dir, tiny_model, monkeypatch):
    seen = probe_engine_arguments(tmp_path / "run", tiny_model, monkeypatch, [])
    # None: vllm.py's cpu_defaults (or vLLM's own on a GPU) decide, exactly as for evaluation.
    assert seen["kv_cache_memory_bytes"] is None and seen["enforce_eager"] is None
    assert seen["dtype"] == "auto"


def test_the_probe_stage_key_follows_the_engine_settings(tmp_path, data_dir):
    """Another dtype gives other attempts: a changed eval.vllm must re-run the probe, not reuse it."""
    from cgd.pipeline import student_options

    plain = resolve("smoke", ["backend=vllm"]).build_config()
    other = resolve("smoke", ["backend=vllm", "eval.vllm.dtype=bfloat16"]).build_config()
    assert student_options(plain) != student_options(other)
    assert student_options(resolve("smoke", ["eval.vllm.dtype=bfloat16"]).build_config()) == {}  # hf


def test_checkpoint_validation_opens_vllm_with_the_runs_eval_vllm_settings(tiny_model, monkeypatch):
    """train.select=best-val scores checkpoints on the validation split through the run's backend: with
    backend vllm, eval.vllm's settings reach that engine too, and they are part of the train stage's key."""
    import harness.backends.vllm as vllm_backend
    from training.selection import score_checkpoint

    seen = {}

    def record(resolved, **kwargs):
        seen.update(kwargs)
        raise EngineOpened

    monkeypatch.setattr(vllm_backend, "VLLMBackend", record)
    val = resolve("smoke", ["backend=vllm", *ENGINE]).val_config()
    with pytest.raises(EngineOpened):
        score_checkpoint(tiny_model, [{"question": "1+1?", "answer": "2"}], val)
    assert {k: seen[k] for k in val.backend_options} == resolve(
        "smoke", ["backend=vllm", *ENGINE]
    ).eval.backend_options("vllm")
    assert seen["kv_cache_memory_bytes"] == 123456789
    hf = resolve("smoke", []).val_config()
    assert "backend_options" not in hf.as_dict()  # hf runs keep their train stage keys
    assert val.as_dict()["backend_options"]["dtype"] == "bfloat16"
