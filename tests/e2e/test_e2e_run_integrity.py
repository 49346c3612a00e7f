"""`harness compare` on a copy of the session's small `ci` run (conftest.compare_run): an edited or
truncated file in the run directory is never reused, a run directory refuses another config, and a
second compare on a run directory waits for the first instead of doing the same work beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ci_compare import compare_cmd, isolated_home, run

from cgd.methods import METHODS
from harness import layout
from harness.run import RunDir


def _copy(compare_run, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """(run directory, generation-cache home, the command that made it) for a copy of the session run."""
    base, _ = compare_run
    shutil.copytree(base / "run", tmp_path / "run", symlinks=True)
    cmd = compare_cmd(tmp_path / "run", tmp_path / "report", "--methods", ",".join(METHODS))
    return tmp_path / "run", base / "home", cmd


def _stages(root: Path) -> dict:
    return json.loads((root / layout.MANIFEST).read_text())["stages"]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "changed since" in line or "is missing" in line]


def test_an_edited_training_set_is_rebuilt_and_cgd_is_not_retrained_on_it(compare_run, tmp_path) -> None:
    root, home, cmd = _copy(compare_run, tmp_path)
    data = root / layout.dataset("cgd")
    original = data.read_bytes()
    first, rest = original.decode().split("\n", 1)
    row = json.loads(first)
    row["completion"][-1]["content"] += " (edited)"
    data.write_text(json.dumps(row) + "\n" + rest)
    before = _stages(root)
    proc = run(cmd, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (warning,) = _warnings(proc.stderr)
    assert "data/cgd.jsonl changed since stage build:cgd wrote it" in warning and "again" in warning
    assert data.read_bytes() == original
    after = _stages(root)
    # build:cgd ran again; its entry may be byte-identical (same outputs, and a millisecond wall time
    # that can repeat), so the log says it ran; train:cgd and the rest kept their entries.
    assert "stage build:cgd: up to date, skipped" not in proc.stderr
    assert {k for k in after if after[k] != before[k]} <= {"build:cgd"}


def test_an_edited_or_truncated_samples_file_is_refused_by_the_report_and_redone_by_compare(
    compare_run, tmp_path
) -> None:
    root, home, cmd = _copy(compare_run, tmp_path)
    samples = root / layout.samples("cgd", "math500")
    original = samples.read_bytes()
    first, rest = original.decode().split("\n", 1)
    record = json.loads(first)
    record["metrics"] = {k: 1 - v if isinstance(v, (int, float)) else v for k, v in record["metrics"].items()}
    samples.write_text(json.dumps(record) + "\n" + rest)
    report = run([sys.executable, "-m", "harness_app", "report", str(root), "-o", str(tmp_path / "r")], home)
    assert report.returncode == 2, report.stderr[-3000:]
    assert "Traceback" not in report.stderr
    (line,) = [x for x in report.stderr.splitlines() if x.strip()][-1:]
    assert "samples_math500.jsonl changed since stage eval:cgd wrote it" in line and "compare again" in line
    proc = run(cmd, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (warning,) = _warnings(proc.stderr)
    assert "eval/cgd/samples_math500.jsonl" in warning
    assert samples.read_bytes() == original
    base, _ = compare_run
    assert (tmp_path / "report" / "table.csv").read_bytes() == (base / "report" / "table.csv").read_bytes()

    samples.write_bytes(original[: len(original) // 2])  # a truncated file: a malformed last line
    proc = run(cmd, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert samples.read_bytes() == original


def test_a_run_directory_refuses_a_compare_with_another_config(compare_run, tmp_path) -> None:
    root, home, _ = _copy(compare_run, tmp_path)
    config, manifest = (root / layout.CONFIG).read_bytes(), (root / layout.MANIFEST).read_bytes()
    other = compare_cmd(root, tmp_path / "report", "--methods", "sft", "--set", "train.max_steps=3")
    proc = run(other, home)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert "Traceback" not in proc.stderr
    assert "methods:" in lines[-1] and "train.max_steps: 2 -> 3" in lines[-1] and "new -o" in lines[-1]
    assert (root / layout.CONFIG).read_bytes() == config and (root / layout.MANIFEST).read_bytes() == manifest
    assert not (tmp_path / "report").exists()


def test_a_second_compare_waits_for_the_first_and_then_redoes_nothing(compare_run, tmp_path) -> None:
    root, home, cmd = _copy(compare_run, tmp_path)
    before = _stages(root)
    env = {**os.environ, "HARNESS_HOME": str(isolated_home(home))}
    err = tmp_path / "second.err"
    with RunDir(root).lock(), err.open("w") as sink:  # the first compare, still working
        second = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        deadline = time.time() + 300
        while "waiting" not in err.read_text() and second.poll() is None and time.time() < deadline:
            time.sleep(1)
        assert second.poll() is None, err.read_text()[-3000:]  # waiting, not refused, not racing
        (line,) = [x for x in err.read_text().splitlines() if "waiting" in x]
        assert str(root) in line and f"pid {os.getpid()}" in line
        assert _stages(root) == before and not (tmp_path / "report").exists()
    assert second.wait(timeout=900) == 0, err.read_text()[-3000:]
    assert _stages(root) == before  # every stage the first finished is reused, none redone
    assert not _warnings(err.read_text())
    assert (tmp_path / "report" / "table.md").exists()
