"""A run directory that cannot lie: outputs checked against their recorded hashes, one config per
run directory, one process at a time, and a report that tells an unfinished method from an absent one."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_report import make_run

from cgd.hypotheses import HYPOTHESES
from harness import layout
from harness.errors import HarnessError
from harness.findings import AnalysisConfig, analyse
from harness.io import atomic_write_json, read_json, sha256_file
from harness.run import RunDir
from harness.rundata import RunData
from harness_app.compare import check_same_config
from harness_app.run_config import resolve


def _stage(run: RunDir, calls: list, text: str = "a\nb\n"):
    """A stage writing out/rows.jsonl and a directory out/dir/; records each call."""

    def fn():
        calls.append(1)
        run.path("out/dir").mkdir(parents=True, exist_ok=True)
        run.path("out/dir/w.bin").write_bytes(b"weights")
        run.path("out/rows.jsonl").write_text(text)
        return ["out/rows.jsonl", "out/dir"]

    return run.run_stage("make", {"v": 1}, fn)


@pytest.mark.parametrize(
    "damage",
    [
        lambda root: (root / "out/rows.jsonl").write_text("a\nB\n"),  # edited
        lambda root: (root / "out/rows.jsonl").write_text("a\n"),  # truncated
        lambda root: (root / "out/rows.jsonl").unlink(),  # lost
        lambda root: (root / "out/dir/w.bin").write_bytes(b"weightz"),  # a file in an output directory
    ],
    ids=["edited", "truncated", "missing", "in-directory"],
)
def test_a_changed_output_is_named_and_its_stage_runs_again(tmp_path, caplog, damage) -> None:
    run, calls = RunDir(tmp_path / "run"), []
    record = _stage(run, calls)
    assert set(record["output_hashes"]) == {"out/rows.jsonl", "out/dir"}
    _stage(run, calls)
    assert len(calls) == 1  # untouched: skipped
    damage(run.root)
    with caplog.at_level(logging.WARNING):
        _stage(run, calls)
    assert len(calls) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "out/" in line and "running stage make again" in line
    assert (run.root / "out/rows.jsonl").read_text() == "a\nb\n"
    again = _stage(run, calls)
    assert again["output_hashes"] == record["output_hashes"] and len(calls) == 2  # as it was: skipped


def test_a_stage_never_reads_an_edited_output_of_another(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    _stage(run, [])
    assert run.input_hash("out/rows.jsonl") == sha256_file(run.path("out/rows.jsonl"))
    run.path("out/rows.jsonl").write_text("a\nB\n")
    with pytest.raises(HarnessError, match=r"out/rows.jsonl changed since stage make wrote it") as err:
        run.input_hash("out/rows.jsonl")
    assert "\n" not in str(err.value) and "again" in str(err.value)
    run.path("other.jsonl").write_text("{}\n")  # a file no stage recorded is read as it is
    assert run.input_hash("other.jsonl") == sha256_file(run.path("other.jsonl"))


def test_a_second_process_waits_for_the_run_directorys_lock(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    script = (
        "import logging, sys, time; logging.basicConfig(level=logging.INFO)\n"
        "from harness.run import RunDir\n"
        f"with RunDir({str(run.root)!r}).lock():\n"
        "    print('locked', time.time(), flush=True)\n"
    )
    with run.lock():
        waiter = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(3)
        assert waiter.poll() is None  # still waiting
        released = time.time()
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert float(out.split()[1]) >= released
    (line,) = [x for x in err.splitlines() if "waiting" in x]
    assert str(run.root) in line and f"pid {__import__('os').getpid()}" in line


def _compare_config_json(run: Path, overrides: list[str]) -> None:
    config = resolve("ci", overrides)
    atomic_write_json(run / layout.CONFIG, {**config.as_dict(), "run_id": config.run_id()})


def test_a_run_directory_refuses_another_config(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    _compare_config_json(run.root, [])
    check_same_config(run, resolve("ci", []))  # the same command resumes
    check_same_config(run, resolve("ci", ["analysis.alpha=0.01"]))  # re-reading results is no new run
    with pytest.raises(HarnessError) as err:
        check_same_config(run, resolve("ci", ["methods=sft", "train.max_steps=3"]))
    message = str(err.value)
    assert "\n" not in message and "new -o" in message
    assert "methods: ['sft', 'cft', 'cgd'] -> ['sft']" in message and "train.max_steps: 2 -> 3" in message


def test_a_model_trained_under_another_config_is_never_reported(tmp_path) -> None:
    root = make_run(tmp_path)
    config = read_json(root / layout.CONFIG)
    atomic_write_json(root / layout.CONFIG, {**config, "model": "tiny-random", "train": {"max_steps": 3}})
    for label in ("sft", "cft", "cgd"):
        summary = read_json(root / layout.train_summary(label))
        steps = 3 if label == "sft" else 2
        summary["config"] = {"model": "tiny-random", "max_steps": steps, "report_to": "none"}
        atomic_write_json(root / layout.train_summary(label), summary)
    with pytest.raises(HarnessError, match=r"cft was trained with train.max_steps=2 \(config.json: 3\)"):
        RunData(root)


def test_a_recorded_evaluation_file_that_changed_stops_the_reader(tmp_path) -> None:
    root = make_run(tmp_path)
    run = RunDir(root)
    outputs = [layout.results("cgd"), layout.samples("cgd", "math500")]
    run.mark_done("eval:cgd", "h", outputs)
    assert RunData(root).samples("cgd", "math500")
    samples = root / layout.samples("cgd", "math500")
    samples.write_text(samples.read_text().replace('"exact_match": 0', '"exact_match": 1', 1))
    with pytest.raises(HarnessError, match="samples_math500.jsonl changed since stage eval:cgd") as err:
        RunData(root).samples("cgd", "math500")
    assert "harness compare again" in str(err.value)


def test_a_report_written_mid_evaluation_says_not_finished(tmp_path) -> None:
    root = make_run(tmp_path)
    (root / layout.results("cgd")).unlink()  # cgd's evaluation has not completed yet
    why = {f.hypothesis.key: f.why for f in analyse(RunData(root), AnalysisConfig(), HYPOTHESES).findings}
    assert why["H1"] == "cgd not finished"
    never_asked = make_run(tmp_path / "other", methods=("sft", "cft"))
    why = {
        f.hypothesis.key: f.why for f in analyse(RunData(never_asked), AnalysisConfig(), HYPOTHESES).findings
    }
    assert why["H1"] == "cgd did not run"
