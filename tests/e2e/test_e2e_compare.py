"""`harness compare` end to end on the tiny random model: every method, every benchmark, every report
file; a warm re-run is a no-op; a kill at any point followed by the same command gives the same report."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from ci_compare import compare_cmd, isolated_home, run

from cgd.methods import METHODS

REPORT_FILES = [
    "table.md",
    "table.csv",
    "table.tex",
    "report.html",
    "scores.png",
    "deltas.png",
    "measures.png",
    "drift.png",
    "loss.png",
    "drift.md",
    "summary.md",
    "compute.md",
]
DETERMINISTIC = ["table.md", "table.csv", "table.tex", "drift.md", "drift.csv", "forgetting.csv"]
# The md/tex/html headers name the run directory, which differs between the two runs compared below.
RUN_INDEPENDENT = ["table.csv", "drift.csv", "forgetting.csv"]


def test_every_report_file_and_every_method(compare_run):
    base, _ = compare_run
    report = base / "report"
    for name in REPORT_FILES:
        assert (report / name).stat().st_size > 0, name
    table = (report / "table.md").read_text()
    for label in ["base", *METHODS]:
        assert label in table
        assert (base / "run" / "eval" / label / "results.json").exists()
    assert any((report / "flips").iterdir())
    assert (report / "table.md").read_text().count("git") or "revision" in (
        report / "report.html"
    ).read_text()


def test_warm_rerun_redoes_no_stage_and_is_identical(compare_run):
    base, _ = compare_run
    before = {n: (base / "report" / n).read_bytes() for n in DETERMINISTIC if (base / "report" / n).exists()}
    manifest = (base / "run" / "manifest.json").read_bytes()
    proc = run(compare_cmd(base / "run", base / "report", "--methods", ",".join(METHODS)), base / "home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Every stage skipped: none recorded itself again (a wall-time bound here failed on a busy machine).
    assert (base / "run" / "manifest.json").read_bytes() == manifest
    for label in ["base", *METHODS]:
        assert f"stage eval:{label}: up to date, skipped" in proc.stderr
    assert {n: (base / "report" / n).read_bytes() for n in before} == before


def test_faults_at_stage_boundaries_resume_without_redoing_finished_stages(tmp_path, data_dir):
    """Deterministic kills (HARNESS_FAULT): each lands after a stage wrote its outputs and before the
    manifest recorded it; the next run redoes that stage only, and finishes."""
    from harness.run import FAULT_ENV, FAULT_EXIT

    cmd = compare_cmd(tmp_path / "run", tmp_path / "report", "--methods", "sft,cgd")
    manifest = tmp_path / "run" / "manifest.json"
    recorded: dict = {}
    for stage in ("teach", "train:cgd", "eval:sft"):
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=1500,
            env={**os.environ, "HARNESS_HOME": str(isolated_home(tmp_path / "home")), FAULT_ENV: stage},
        )  # fmt: skip
        assert proc.returncode == FAULT_EXIT, proc.stderr[-3000:]
        stages = json.loads(manifest.read_text())["stages"]
        assert stage not in stages
        for name, record in recorded.items():  # finished before an earlier fault: never redone
            assert stages[name] == record, name
        recorded = stages
    final = run(cmd, tmp_path / "home")
    assert final.returncode == 0, final.stderr[-3000:]
    stages = json.loads(manifest.read_text())["stages"]
    assert all(stages[name] == record for name, record in recorded.items())
    assert {"teach", "train:cgd", "eval:sft"} <= set(stages) and (tmp_path / "report" / "table.md").exists()


def test_kill_and_resume_gives_the_same_report(tmp_path, data_dir):
    reference = run(compare_cmd(tmp_path / "ref", tmp_path / "ref-report"), tmp_path / "home-ref")
    assert reference.returncode == 0, reference.stderr[-3000:]
    env = {**os.environ, "HARNESS_HOME": str(isolated_home(tmp_path / "home"))}
    cmd = compare_cmd(tmp_path / "run", tmp_path / "report")
    # Kill at several points: during the data stages, during training, during evaluation.
    for delay in (6, 14, 25):
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    final = run(cmd, tmp_path / "home")
    assert final.returncode == 0, final.stderr[-3000:]
    for name in RUN_INDEPENDENT:
        assert (tmp_path / "report" / name).read_bytes() == (tmp_path / "ref-report" / name).read_bytes(), (
            name
        )
    for samples in (tmp_path / "ref" / "eval").rglob("samples_*.jsonl"):
        twin = tmp_path / "run" / samples.relative_to(tmp_path / "ref")
        assert twin.read_bytes() == samples.read_bytes(), samples.name
