"""Training: completion-only label masks through TRL's own path, matched budgets, outputs, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cgd import methods
from cgd.train import check_matched_budget, train_method
from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_jsonl, read_json, read_jsonl
from harness.run import RunDir
from training.train_config import TrainConfig
from training.trainer import make_trainer

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "cases" / "methods_fixture.jsonl"
# The batch is the whole dataset, so every step's loss is measured on the same examples.
ROWS_USED = 2
TINY = dict(max_steps=3, learning_rate=1e-3, batch_size=ROWS_USED, max_length=512, lr_scheduler="constant")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()][:ROWS_USED]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from harness.models import resolve_model

    return resolve_model(str(tiny_model))


def render_ids(tokenizer, messages, generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_prompt_tokens_get_label_minus_100_and_completion_tokens_do_not(tiny, rows, tmp_path):
    model, tokenizer = tiny.load(dtype=torch.float32)
    examples = methods.build_examples("cgd", rows)
    trainer = make_trainer(model, tokenizer, examples, TrainConfig(model=tiny.name, **TINY), tmp_path)
    prepared = trainer.train_dataset
    assert len(prepared) == len(examples)
    for ex, item in zip(examples, prepared):
        ids, labels = item["input_ids"], item["labels"]
        prompt = render_ids(tokenizer, ex["prompt"], generation_prompt=True)
        assert ids == render_ids(tokenizer, ex["prompt"] + ex["completion"], generation_prompt=False)
        assert ids[: len(prompt)] == prompt
        assert all(label == -100 for label in labels[: len(prompt)])
        assert labels[len(prompt) :] == ids[len(prompt) :]
        # What is learned is exactly the assistant turn, closed by its end-of-turn token.
        learned = tokenizer.decode(ids[len(prompt) :])
        assert learned == ex["completion"][0]["content"] + "<|im_end|>\n"

    batch = trainer.data_collator([prepared[0], prepared[1]])
    lengths = [len(prepared[i]["input_ids"]) for i in range(2)]
    short = lengths.index(min(lengths))
    pad = max(lengths) - min(lengths)
    assert pad > 0
    assert (batch["attention_mask"][short] == 0).sum() == pad
    assert (batch["labels"][short][batch["attention_mask"][short] == 0] == -100).all()
    for i in range(2):
        kept = batch["labels"][i][batch["labels"][i] != -100].tolist()
        assert kept == [t for t in prepared[i]["labels"] if t != -100]


def run_with(tmp_path: Path, rows: list[dict], names: list[str]) -> RunDir:
    run = RunDir(tmp_path / "run")
    for name in names:
        atomic_write_jsonl(run.path(layout.dataset(name)), methods.build_examples(name, rows, seed=0))
    return run


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_tiny_model_trains_three_steps_and_its_loss_drops(tiny, rows, tmp_path, name):
    run = run_with(tmp_path, rows, [name])
    summary = train_method(run, name, TrainConfig(model=tiny.name, **TINY))
    log = read_jsonl(run.path("train", name, "log.jsonl"))
    assert [e["step"] for e in log] == [1, 2, 3] and summary["steps"] == 3
    assert log[-1]["loss"] < log[0]["loss"]
    assert summary["final_loss"] == log[-1]["loss"]
    assert (run.path("train", name, "checkpoint") / "model.safetensors").exists()
    assert (run.path("train", name, "checkpoint") / "chat_template.jinja").exists()

    # Every step saw the whole dataset once: the counts are exact.
    model, tokenizer = tiny.load(dtype=torch.float32)
    examples = read_jsonl(run.path(layout.dataset(name)))
    full = [len(render_ids(tokenizer, e["prompt"] + e["completion"], False)) for e in examples]
    prompt = [len(render_ids(tokenizer, e["prompt"], True)) for e in examples]
    assert summary["tokens_trained"] == 3 * sum(full) == log[-1]["tokens"]
    assert summary["completion_tokens"] == 3 * (sum(full) - sum(prompt)) == log[-1]["completion_tokens"]
    assert summary["config"]["max_steps"] == 3 and summary["dataset_hash"]
    assert (summary["examples_used"], summary["examples_truncated"]) == (ROWS_USED, 0)
    # The default keeps the last step: no validation scoring, the matched budget untouched.
    assert (summary["select"], summary["selected_step"]) == ("last", 3) and "val_curve" not in summary


def test_methods_share_the_budget_and_a_finished_method_is_skipped(tiny, rows, tmp_path, monkeypatch):
    run = run_with(tmp_path, rows, ["sft", "cgd"])
    cfg = TrainConfig(model=tiny.name, **TINY)
    first = {name: train_method(run, name, cfg) for name in ("sft", "cgd")}
    assert first["sft"]["config"] == first["cgd"]["config"]
    assert first["sft"]["steps"] == first["cgd"]["steps"] == 3
    assert first["sft"]["dataset_hash"] != first["cgd"]["dataset_hash"]

    import cgd.train

    monkeypatch.setattr(cgd.train, "_fit", lambda *a, **k: pytest.fail("a finished method was trained again"))
    assert train_method(run, "cgd", cfg) == first["cgd"]
    monkeypatch.undo()
    # A changed input (here the learning rate) trains again.
    again = train_method(run, "cgd", TrainConfig(model=tiny.name, **{**TINY, "learning_rate": 5e-4}))
    assert again["config"]["learning_rate"] == 5e-4


def test_lora_saves_an_adapter_that_resolves_to_its_base(tiny, rows, tmp_path):
    from harness.models import resolve_model

    run = run_with(tmp_path, rows, ["cft"])
    summary = train_method(
        run, "cft", TrainConfig(model=tiny.name, lora=True, lora_r=4, lora_alpha=8, **TINY)
    )
    checkpoint = run.path("train", "cft", "checkpoint")
    assert (checkpoint / "adapter_config.json").exists()
    assert not (checkpoint / "model.safetensors").exists()
    assert summary["final_loss"] < summary["first_loss"]
    adapter = resolve_model(str(checkpoint))
    assert adapter.adapter == checkpoint and adapter.path == tiny.path


def test_missing_dataset_and_bad_config_are_clear(tiny, tmp_path):
    with pytest.raises(HarnessError, match="harness data build --methods cgd"):
        train_method(tmp_path / "empty", "cgd", TrainConfig(model=tiny.name))
    with pytest.raises(HarnessError, match="valid methods"):
        train_method(tmp_path / "empty", "cdg", TrainConfig(model=tiny.name))
    with pytest.raises(HarnessError, match="lr scheduler"):
        TrainConfig(lr_scheduler="sawtooth")
    with pytest.raises(HarnessError, match="train.select 'best'; valid: last, best-val"):
        TrainConfig(select="best")
    with pytest.raises(HarnessError, match="eval_every must be >= 0"):
        TrainConfig(eval_every=-1)
    assert (TrainConfig().select, TrainConfig().eval_every) == ("last", 0)


def test_best_val_scores_each_saved_checkpoint_and_records_the_curve(tiny, rows, tmp_path):
    from training.selection import ValConfig, choose

    run = run_with(tmp_path, rows, ["sft"])
    atomic_write_jsonl(run.path("problems", "val.jsonl"), rows)
    cfg = TrainConfig(model=tiny.name, select="best-val", eval_every=1, **TINY)
    summary = train_method(run, "sft", cfg, val=ValConfig(max_new_tokens=8))
    curve = summary["val_curve"]
    assert [p["step"] for p in curve] == [1, 2, 3]
    for point in curve:
        low, high = point["interval"]
        assert point["n"] == ROWS_USED and 0.0 <= low <= point["acc"] <= high <= 1.0 and high > low
    assert summary["selected_step"] == choose(curve) and summary["select"] == "best-val"
    assert read_json(run.path("train", "sft", "summary.json"))["val_curve"] == curve
    assert (run.path("train", "sft", "checkpoint") / "model.safetensors").exists()
    assert not run.path("train", "sft", "steps").exists()  # the other candidates are gone
    # Asking for no validation without validation problems is fine; asking for it is one clear line.
    run.path("problems", "val.jsonl").write_text("")
    with pytest.raises(HarnessError, match="needs validation problems"):
        train_method(run, "sft", TrainConfig(model=tiny.name, select="best-val", **{**TINY, "max_steps": 1}))


def test_the_selection_rule_and_installing_an_earlier_step(tmp_path):
    from training.selection import choose, install, save_steps, step_dir

    point = lambda step, acc: {"step": step, "acc": acc}  # noqa: E731
    assert choose([point(1, 0.5), point(2, 0.75), point(3, 0.5)]) == 2
    assert choose([point(1, 0.5), point(2, 0.5), point(3, 0.5)]) == 3  # ties: the later step
    assert save_steps(7, 2) == [2, 4, 6] and save_steps(6, 2) == [2, 4] and save_steps(6, 0) == []
    for step, text in ((1, "one"), (2, "two")):
        step_dir(tmp_path, step).mkdir(parents=True)
        (step_dir(tmp_path, step) / "weights").write_text(text)
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "weights").write_text("three")
    install(tmp_path, 1, 3)
    assert (tmp_path / "checkpoint" / "weights").read_text() == "one"
    assert not (tmp_path / "steps").exists()


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero3"])
def test_shipped_launch_configs_are_ones_that_accelerate_reads(name):
    from accelerate.commands.config.config_args import ClusterConfig

    loaded = ClusterConfig.from_yaml_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml"))
    assert (
        str(loaded.distributed_type).rsplit(".", 1)[-1]
        == {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero3": "DEEPSPEED"}[name]
    )
    assert loaded.mixed_precision == "no" and loaded.num_processes == 8
    if name == "fsdp":
        assert loaded.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if name == "zero3":
        assert (
            loaded.deepspeed_config["zero_stage"] == 3 and loaded.deepspeed_config["zero3_save_16bit_model"]
        )


def test_two_processes_give_the_losses_of_one_with_the_same_global_batch(tiny, tmp_path, free_port):
    """torchrun on CPU (gloo): 2 processes x batch 1 against 1 process x batch 2, over 4 shuffled rows."""
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()][:4]
    args = dict(max_steps=3, learning_rate=1e-3, max_length=512, lr_scheduler="constant")
    single = run_with(tmp_path / "one", rows, ["sft"])
    one = train_method(single, "sft", TrainConfig(model=str(tiny.path), batch_size=2, **args))
    double = run_with(tmp_path / "two", rows, ["sft"])
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port),
            "-m",
            "harness_app",
            "train",
            "--method",
            "sft",
            "--run-dir",
            str(double.root),
            "--model",
            str(tiny.path),
            "--batch-size",
            "1",
            "--max-steps",
            "3",
            "--lr",
            "1e-3",
            "--max-length",
            "512",
            "--lr-scheduler",
            "constant",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("global_batch=2") == 1  # rank 0 alone reports
    two = read_json(double.path("train", "sft", "summary.json"))
    assert (one["processes"], one["global_batch"], two["processes"], two["global_batch"]) == (1, 2, 2, 2)
    first, second = (read_jsonl(run.path("train", "sft", "log.jsonl")) for run in (single, double))
    assert [e["tokens"] for e in first] == [e["tokens"] for e in second]  # the same examples in every step
    assert [e["loss"] for e in second] == pytest.approx([e["loss"] for e in first], rel=1e-5, abs=1e-6)
    assert first[-1]["loss"] != first[0]["loss"]  # the weights moved, so later steps test the update too
    # Gradient accumulation is the third way to the same global batch.
    accum = run_with(tmp_path / "accum", rows, ["sft"])
    train_method(accum, "sft", TrainConfig(model=str(tiny.path), batch_size=1, grad_accum=2, **args))
    third = read_jsonl(accum.path("train", "sft", "log.jsonl"))
    assert [e["loss"] for e in third] == pytest.approx([e["loss"] for e in first], rel=1e-5, abs=1e-6)

    # Rank 0 alone wrote: the same files as the single process, no leftovers of rank 1.
    # TensorBoard names its event files by time, host and pid: compare them by directory only.
    def tree(run):
        names = (p.relative_to(run.root) for p in run.root.rglob("*"))
        return sorted(
            n.parent / "events.*" if n.name.startswith("events.out.tfevents.") else n for n in names
        )

    files = [tree(run) for run in (single, double)]
    assert files[0] == files[1]

    # Mixing global batches in one run is refused: the report would compare unequal budgets.
    train_method(double, "sft", TrainConfig(model=str(tiny.path), batch_size=1, **args), label="sft@small")
    with pytest.raises(HarnessError, match=r"different global batches.*sft 2 \(1 x 2 processes x 1\)"):
        check_matched_budget(double)
