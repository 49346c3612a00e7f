"""The real SmolLM2-135M-Instruct: the embedded GGUF converts bit-exactly and answers a benchmark."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_embedded_model_converts_bit_exactly():
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    from harness.models import EMBEDDED, resolve_model

    resolved = resolve_model("smollm2-135m")
    cached = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.float32).state_dict()
    spec = EMBEDDED["smollm2-135m"]
    src = Path(importlib.util.find_spec(spec["package"]).origin).parent
    direct = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=spec["gguf"], dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    ).state_dict()
    assert cached.keys() == direct.keys()
    assert all(torch.equal(cached[k], direct[k]) for k in cached)
    assert resolve_model("smollm2-135m").fingerprint == resolved.fingerprint


def test_real_model_answers_math500(tmp_path, data_dir):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness_app",
            "eval",
            "--model",
            "smollm2-135m",
            "--benchmarks",
            "math500",
            "--limit",
            "2",
            "--max-new-tokens",
            "256",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [
        json.loads(line) for line in (tmp_path / "eval" / "smollm2-135m" / "samples_math500.jsonl").open()
    ]
    assert len(rows) == 2
    for row in rows:
        assert row["response"].strip() and 0 < row["completion_tokens"] <= 256
        assert row["metrics"]["exact_match"] in (0, 1)
        assert "<|im_start|>user" in row["prompt"]  # the chat template was applied
    results = json.loads((tmp_path / "eval" / "smollm2-135m" / "results.json").read_text())
    assert results["model"]["name"] == "smollm2-135m"
