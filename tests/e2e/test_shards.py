"""`harness eval --shard K/N` + `harness merge`: two shards give the files of one unsharded run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.shards import Shard, parse_shard

BENCHMARKS = "math500,humaneval,ifeval,gpqa_diamond,truthfulqa_mc2"
TASKS = BENCHMARKS.split(",")


def run_cli(*args, home: str | None = None):
    env = {**os.environ, **({"HARNESS_HOME": home} if home else {})}
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args], capture_output=True, text=True, env=env, timeout=900
    )


def eval_args(model: Path, out: Path) -> list[str]:
    return [
        "eval",
        "--model",
        str(model),
        "--benchmarks",
        BENCHMARKS,
        "--limit",
        "4",
        "--max-new-tokens",
        "16",
        "-o",
        str(out),
        "--label",
        "tiny",
    ]


@pytest.fixture(scope="module")
def runs(tiny_model, data_dir, tmp_path_factory):
    whole, sharded = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("sharded")
    proc = run_cli(*eval_args(tiny_model, whole))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The shards get a cache of their own: every answer is generated again, none read back.
    home = tempfile.mkdtemp(prefix="harness_home_shards_")
    for k in (0, 1):
        proc = run_cli(*eval_args(tiny_model, sharded), "--shard", f"{k}/2", home=home)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return whole / "eval" / "tiny", sharded


def test_merged_shards_are_the_unsharded_run(runs):
    whole, sharded = runs
    parts = [sharded / "eval" / "tiny" / "shards" / Shard(k, 2).name for k in (0, 1)]
    assert not (
        sharded / "eval" / "tiny" / "results.json"
    ).exists()  # nothing outside the shards before the merge
    proc = run_cli("merge", str(sharded))
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = sharded / "eval" / "tiny"
    for task in TASKS:
        assert (merged / f"samples_{task}.jsonl").read_bytes() == (
            whole / f"samples_{task}.jsonl"
        ).read_bytes()
        ids = [[json.loads(line)["item_id"] for line in (p / f"samples_{task}.jsonl").open()] for p in parts]
        assert not set(ids[0]) & set(ids[1]) and len(ids[0]) + len(ids[1]) == 4
    a, b = (json.loads((d / "results.json").read_text()) for d in (whole, merged))
    assert a["results"] == b["results"] and a["n-samples"] == b["n-samples"]
    for key in ("versions", "higher_is_better", "configs"):
        assert list(a[key]) == list(b[key]), key
    assert a["versions"] == b["versions"] and a["higher_is_better"] == b["higher_is_better"]
    assert list(a["results"]) == list(b["results"]) and b["merged_shards"] == 2
    assert (merged / "table.md").read_text() == (whole / "table.md").read_text()


def test_shards_of_another_model_or_a_missing_shard_refuse_to_merge(runs, tmp_path):
    _, sharded = runs
    copy = tmp_path / "copy"
    shutil.copytree(sharded / "eval" / "tiny" / "shards", copy / "eval" / "tiny" / "shards")
    results = copy / "eval" / "tiny" / "shards" / Shard(1, 2).name / "results.json"
    payload = json.loads(results.read_text())
    payload["model"]["fingerprint"] = "another-model"
    results.write_text(json.dumps(payload))
    proc = run_cli("merge", str(copy))
    assert (
        proc.returncode == 2
        and "differ in model" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
    results.unlink()
    proc = run_cli("merge", str(copy))
    assert proc.returncode == 2 and "shard(s) 1 of 2 missing" in proc.stderr


def test_eval_under_torchrun_scores_a_shard_per_process_and_rank0_merges(
    runs, tiny_model, tmp_path, free_port
):
    whole, _ = runs
    env = {
        **os.environ,
        "HARNESS_HOME": tempfile.mkdtemp(prefix="harness_home_launch_"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
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
            *eval_args(tiny_model, tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = tmp_path / "eval" / "tiny"
    assert sorted(p.name for p in (merged / "shards").iterdir()) == ["shard-0-of-2", "shard-1-of-2"]
    for task in TASKS:
        assert (merged / f"samples_{task}.jsonl").read_bytes() == (
            whole / f"samples_{task}.jsonl"
        ).read_bytes()
    assert json.loads((tmp_path / "config.json").read_text())["command"] == "eval"


@pytest.mark.parametrize(
    "shard, output, backend, message",
    [
        (Shard(0, 2), Path("run"), "hf", "the launch already gives each process a shard"),
        (None, None, "hf", "needs --output"),
        (None, Path("run"), "vllm", "one `harness eval --shard K/N` process per vLLM replica"),
    ],
)
def test_launched_eval_refuses_what_it_cannot_split(monkeypatch, shard, output, backend, message):
    from harness_app.cli.eval import _launch_shard

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(HarnessError, match=message):
        _launch_shard(shard, output, backend)


@pytest.mark.parametrize("spec", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shard_spec_is_one_line(spec):
    with pytest.raises(HarnessError, match="expected K/N"):
        parse_shard(spec)


def test_shard_assignment_is_by_id_and_covers_every_item():
    ids = [str(i) for i in range(200)]
    owners = [[k for k in range(4) if Shard(k, 4).takes("math500", i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    assert all(30 < sum(o == [k] for o in owners) < 70 for k in range(4))
