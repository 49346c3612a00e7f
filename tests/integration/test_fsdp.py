"""FSDP2 for real on CPU: 2 processes over gloo, parameters sharded, the losses of 1 process, a full
checkpoint that `harness eval` loads; launch configs that cannot shard here stop in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cgd import methods
from cgd.train import train_method
from harness import layout
from harness.io import atomic_write_jsonl, read_json, read_jsonl
from harness.run import RunDir
from training.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "cases" / "methods_fixture.jsonl"
ARGS = dict(max_steps=3, learning_rate=1e-3, max_length=512, lr_scheduler="constant")
# Losses of 1 and 2 processes: the same fp32 products summed in another order (each rank sums its own
# rows, the reduce-scatter adds the two halves of every gradient). Summing n terms in two orders
# differs by at most ~2 log2(n) u of the sum of magnitudes (u = 2^-24); the longest sums here (the LM
# head over a 49,152-token vocabulary, n < 2^16) give 32u = 1.9e-6, and three steps of AdamW move the
# loss by the gradient times the weights' difference, which is small where AdamW amplifies a rounding
# (near-zero gradients). 1e-5 relative covers both with room; the measured gap is about 1e-7.
LOSS_RTOL = 1e-5


def launch(config: str, run: RunDir, model: Path, port: int, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        *(sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)),
        *("--num_processes", "2", "--main_process_port", str(port)),
        *("-m", "harness_app", "train", "--method", "sft", "--run-dir", str(run.root), "--model", str(model)),
        *("--batch-size", "1", "--max-steps", "3", "--lr", "1e-3", "--max-length", "512"),
        *("--lr-scheduler", "constant", *extra),
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=REPO)


def run_with(root: Path) -> RunDir:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()][:4]
    run = RunDir(root)
    atomic_write_jsonl(run.path(layout.dataset("sft")), methods.build_examples("sft", rows, seed=0))
    return run


def test_fsdp_launch_shards_parameters_and_trains_as_one_process(tiny_model, tmp_path, free_port):
    single = run_with(tmp_path / "one")
    one = train_method(single, "sft", TrainConfig(model=str(tiny_model), batch_size=2, **ARGS))
    sharded = run_with(tmp_path / "fsdp")
    proc = launch(REPO / "configs" / "accelerate" / "fsdp.yaml", sharded, tiny_model, free_port)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = read_json(sharded.path("train", "sft", "summary.json"))

    # Sharded for real: each rank holds its part of every parameter, together exactly the model.
    shards = two["sharding"]
    assert shards["engine"] == "fsdp2" and shards["parameters"] == one["sharding"]["parameters"]
    assert sum(shards["local_parameters"]) == shards["parameters"]
    assert max(shards["local_parameters"]) < 0.51 * shards["parameters"]
    assert one["sharding"] == {
        "engine": "single",
        "parameters": shards["parameters"],
        "local_parameters": [shards["parameters"]],
    }
    assert (two["processes"], two["global_batch"]) == (2, one["global_batch"])

    first, second = (read_jsonl(run.path("train", "sft", "log.jsonl")) for run in (single, sharded))
    assert [e["tokens"] for e in first] == [e["tokens"] for e in second]  # the same examples each step
    gaps = [abs(b["loss"] - a["loss"]) / abs(a["loss"]) for a, b in zip(first, second)]
    print(f"losses 1 process {[e['loss'] for e in first]}, 2 FSDP2 processes {[e['loss'] for e in second]}")
    print(f"relative gaps per step {gaps}, bound {LOSS_RTOL:g}")  # for the log (pytest -s)
    assert [e["loss"] for e in second] == pytest.approx([e["loss"] for e in first], rel=LOSS_RTOL)
    assert first[-1]["loss"] != first[0]["loss"]  # the weights moved

    # The checkpoint is one full state dict: the model loads from it alone, with the weights of the
    # single process's (AdamW's sign-like steps on near-zero gradients bound the gap by 2 lr per step).
    from harness.models import resolve_model

    ckpt = sharded.path("train", "sft", "checkpoint")
    fsdp_model, _ = resolve_model(str(ckpt)).load(dtype=torch.float32)
    one_model, _ = resolve_model(str(single.path("train", "sft", "checkpoint"))).load(dtype=torch.float32)
    for (name, a), (_, b) in zip(one_model.state_dict().items(), fsdp_model.state_dict().items()):
        assert a.shape == b.shape and (a - b).abs().max() <= 2 * ARGS["learning_rate"] * ARGS["max_steps"], (
            name
        )
    eval_proc = subprocess.run(
        [sys.executable, "-m", "harness_app", "eval", "--model", str(ckpt), "--benchmarks", "truthfulqa_mc2"]
        + ["--limit", "2", "-o", str(tmp_path / "eval"), "--label", "fsdp"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert eval_proc.returncode == 0, eval_proc.stderr[-3000:]
    results = read_json(tmp_path / "eval" / "eval" / "fsdp" / "results.json")
    assert "acc,none" in results["results"]["truthfulqa_mc2"]


def test_launch_configs_that_cannot_shard_on_cpu_stop_in_one_line(monkeypatch):
    from harness import distributed
    from harness.errors import HarnessError

    if torch.cuda.is_available():
        pytest.skip("on a GPU machine these configs shard")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(HarnessError, match="DeepSpeed ZeRO-3 .* cannot shard on CPU"):
        distributed.check_engine()
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(HarnessError, match="needs fsdp_version: 2"):
        distributed.check_engine()
    monkeypatch.setenv("FSDP_VERSION", "2")
    distributed.check_engine()  # FSDP2 shards on CPU


def test_a_zero3_process_on_cpu_exits_2_before_training(tiny_model, tmp_path):
    """What `accelerate launch --config_file zero3.yaml` starts on a CPU machine where deepspeed is
    installed: processes with ACCELERATE_USE_DEEPSPEED set (without deepspeed the launcher itself stops)."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine ZeRO-3 shards")
    run = run_with(tmp_path / "zero3")
    env = {**os.environ, "ACCELERATE_USE_DEEPSPEED": "true"}
    command = ["train", "--method", "sft", "--run-dir", str(run.root), "--model", str(tiny_model)]
    proc = subprocess.run(
        [sys.executable, "-m", "harness_app", *command], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: DeepSpeed ZeRO-3 (configs/accelerate/zero3.yaml) needs CUDA GPUs")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not run.path("train").exists()
