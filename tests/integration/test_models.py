"""Model resolution: directories, adapters, fingerprints and the errors users see."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.errors import HarnessError
from harness.models import fingerprint_dir, resolve_model


def test_local_dir_and_fingerprint_is_stable(tiny_model, tmp_path):
    a = resolve_model(str(tiny_model))
    assert a.path == tiny_model and a.adapter is None
    assert a.fingerprint == resolve_model(str(tiny_model)).fingerprint
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    assert fingerprint_dir(copy) == a.fingerprint  # content, not location, defines a model
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (copy / "config.json").write_text(json.dumps(config))
    assert fingerprint_dir(copy) != a.fingerprint


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no-such-model", "unknown model 'no-such-model'"),
        ("./missing/dir", "unknown model"),
    ],
)
def test_unknown_model_names_the_choices(spec, message):
    with pytest.raises(HarnessError, match=message) as info:
        resolve_model(spec)
    assert "smollm2-135m" in str(info.value)


def test_not_a_model_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(HarnessError, match="not a model directory"):
        resolve_model(str(tmp_path))
    with pytest.raises(HarnessError, match="is a file"):
        resolve_model(str(tmp_path / "notes.txt"))


def test_hub_id_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HarnessError, match="HF_HUB_OFFLINE"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_adapter_loads_on_its_base(tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = get_peft_model(
        base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg_file = tmp_path / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["base_model_name_or_path"] = str(tiny_model)
    cfg_file.write_text(json.dumps(cfg))
    resolved = resolve_model(str(tmp_path / "adapter"))
    assert resolved.adapter == tmp_path / "adapter" and resolved.path == tiny_model
    assert resolved.fingerprint != resolve_model(str(tiny_model)).fingerprint
    model, _ = resolved.load()
    ids = torch.tensor([[1, 2, 3]])
    assert not torch.allclose(model(ids).logits, AutoModelForCausalLM.from_pretrained(tiny_model)(ids).logits)


def test_adapter_without_base(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(HarnessError, match="does not name its base model: set base_model_name_or_path"):
        resolve_model(str(tmp_path))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/nowhere/base"}))
    with pytest.raises(HarnessError, match="base model '/nowhere/base' cannot be used"):
        resolve_model(str(tmp_path))
