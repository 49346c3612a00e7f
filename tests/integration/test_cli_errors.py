"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def run_cli(*args, env_extra=None):
    """`harness ARGS` in this process (the real entry point, `main()`, with its exit handling), so the
    bad-input tests pay no interpreter start-up; the --debug test below runs one real subprocess."""
    import contextlib
    import io
    from types import SimpleNamespace

    from harness_app.cli import main

    saved_env, saved_argv = dict(os.environ), sys.argv
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.update(env_extra or {})
        sys.argv = ["harness", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def run_cli_subprocess(*args):
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["eval", "--benchmarks", "math500,nope"], ["unknown benchmark", "math500", "ifeval"]),
        (["eval", "--model", "no-such-model", "--benchmarks", "math500"], ["unknown model", "smollm2-135m"]),
        (["eval", "--truthfulqa-version", "1999", "--benchmarks", "truthfulqa_mc1"], ["2021", "2025"]),
        (["compare", "--profile", "nope"], ["unknown profile", "smoke"]),
        (["compare", "--set", "train.nope=1"], ["unknown key", "train.max_steps"]),
        (["compare", "--set", "train.max_steps=many"], ["expected int"]),
        (["compare", "--methods", "sft,magic"], ["magic", "cgd"]),
        (["compare", "--set", "eval.benchmarks=math500,nope"], ["unknown benchmark"]),
        (["compare", "--set", "analysis.margin=-1"], ["analysis.margin=-1.0: must be >= 0"]),
        (["compare", "--set", "analysis.multiplicity=sidak"], ["analysis.multiplicity=sidak", "holm"]),
        (["eval", "--math-grader", "sympy", "--benchmarks", "math500"], ["eval.math_grader", "qwen", "both"]),
        (["compare", "--set", "eval.math_grader=sympy"], ["eval.math_grader", "math-verify"]),
    ],
)
def test_bad_names_list_valid_choices(args, fragments, tmp_path):
    proc = run_cli(*args, "-o", str(tmp_path / "run"))
    assert_one_line_error(proc, *fragments)
    assert not (tmp_path / "run" / "eval").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli_subprocess("--debug", "eval", "--benchmarks", "nope", "-o", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_data_file_names_the_variable_and_path(tmp_path, tiny_model):
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "amc23",
        "--limit",
        "1",
        "-o",
        str(tmp_path / "run"),
        env_extra={"HARNESS_DATA_DIR": str(tmp_path / "empty")},
    )
    assert_one_line_error(proc, "HARNESS_DATA_DIR", "amc23/test.jsonl")
    assert not (tmp_path / "run" / "eval").exists()


def test_malformed_row_names_file_and_line(tmp_path, tiny_model, data_dir):
    bad = tmp_path / "data"
    (bad / "amc23").mkdir(parents=True)
    rows = (data_dir / "amc23" / "test.jsonl").read_text().splitlines()
    (bad / "amc23" / "test.jsonl").write_text(
        "\n".join([rows[0], '{"id": 3, "problem": ', *rows[1:3]]) + "\n"
    )
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "amc23",
        "--limit",
        "1",
        "-o",
        str(tmp_path / "run"),
        env_extra={"HARNESS_DATA_DIR": str(bad)},
    )
    assert_one_line_error(proc, "test.jsonl:2")


def test_model_path_that_is_not_a_model(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("not a model")
    proc = run_cli("eval", "--model", str(tmp_path / "junk"), "--benchmarks", "math500")
    assert_one_line_error(proc, "not a model directory")


def test_empty_data_file_is_named(tmp_path, tiny_model):
    (tmp_path / "data" / "amc23").mkdir(parents=True)
    (tmp_path / "data" / "amc23" / "test.jsonl").write_text("")
    proc = run_cli(
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "amc23",
        "--limit",
        "1",
        "-o",
        str(tmp_path / "run"),
        env_extra={"HARNESS_DATA_DIR": str(tmp_path / "data")},
    )
    assert_one_line_error(proc, "has no rows")


# --- the run directory becomes unwritable: disk full, read-only ------------------------------------
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    import errno

    from harness.errors import HarnessError
    from harness.io import atomic_write_json

    target = tmp_path / "results.json"
    atomic_write_json(target, {"score": 1})

    def disk_full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(HarnessError, match="cannot write .*results.json: No space left on device"):
        atomic_write_json(target, {"score": 2})
    assert json.loads(target.read_text()) == {"score": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def _in_mount_namespace(script: str) -> subprocess.CompletedProcess:
    """Run `script` as root in a private mount namespace, where tmpfs and read-only binds are allowed."""
    if shutil.which("unshare") is None or (hasattr(os, "geteuid") and os.geteuid() != 0):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    return subprocess.run(
        ["unshare", "-m", "sh", "-ec", script], capture_output=True, text=True, timeout=600, env=os.environ
    )


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _eval_args(model, run, benchmark: str) -> list[str]:
    return [
        "eval",
        "--model",
        str(model),
        "--benchmarks",
        benchmark,
        "--limit",
        "2",
        "--max-new-tokens",
        "8",
        "-o",
        str(run),
    ]


def _eval_cmd(model, run, benchmark: str) -> str:
    """The same command as shell text, for the mount-namespace script."""
    return " ".join([sys.executable, "-m", "harness_app", *_eval_args(model, run, benchmark)])


def test_read_only_run_dir_is_one_clear_error_and_changes_nothing(tmp_path, tiny_model):
    run = tmp_path / "run"
    assert run_cli(*_eval_args(tiny_model, run, "math500")).returncode == 0
    before = _tree(run)
    proc = _in_mount_namespace(
        f"mount --bind {run} {run}; mount -o remount,ro,bind {run}; {_eval_cmd(tiny_model, run, 'amc23')}"
    )
    assert_one_line_error(proc, "cannot write", "Read-only file system")
    assert _tree(run) == before


def test_full_disk_is_one_clear_error_and_the_rerun_completes(tmp_path, tiny_model):
    reference, run = tmp_path / "reference", tmp_path / "full"
    assert run_cli(*_eval_args(tiny_model, reference, "math500")).returncode == 0
    run.mkdir()
    # A 1 MiB tmpfs filled to the last block: the first artefact written hits ENOSPC.
    proc = _in_mount_namespace(
        f"mount -t tmpfs -o size=1m tmpfs {run}; "
        f"dd if=/dev/zero of={run}/filler bs=4k 2>/dev/null || true; "
        f"{_eval_cmd(tiny_model, run, 'math500')}"
    )
    assert_one_line_error(proc, "cannot write", "No space left on device")
    # The namespace (and its full tmpfs) is gone: the same command on the freed disk completes,
    # and its per-sample records equal the uninterrupted run's.
    assert run_cli(*_eval_args(tiny_model, run, "math500")).returncode == 0
    name = "eval/" + next(p.name for p in (reference / "eval").iterdir()) + "/samples_math500.jsonl"
    assert (run / name).read_bytes() == (reference / name).read_bytes()
