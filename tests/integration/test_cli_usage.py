"""How the command ends when misused or stopped: one line, the right exit status, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from harness import data
from harness.errors import HarnessError

ENV = {**os.environ, "COLUMNS": "200"}


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness_app", *args], capture_output=True, text=True, env=ENV, timeout=300
    )


@pytest.mark.parametrize(
    "args, option",
    [
        (["eval", "--nope"], "--nope"),
        (["eval", "--limit", "0"], "--limit"),
        (["compare", "--bogus"], "--bogus"),
    ],
)
def test_a_usage_error_exits_2_naming_the_option(args, option):
    done = harness(*args)
    assert done.returncode == 2, done.stderr
    assert option in done.stderr and "--debug" not in done.stderr and "Traceback" not in done.stderr


def test_repeated_seeds_are_refused_in_one_line():
    done = harness("compare", "--seeds", "0,0", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: seeds: 0 given more than once; give distinct seeds"]


# A command that runs until it is stopped, behind the real `main`: the stop is what is tested.
RUNNER = textwrap.dedent(
    """
    import logging, sys, time
    from tqdm.auto import tqdm
    from harness_app.cli import app, main
    from harness.errors import HarnessError

    @app.command("wait")
    def wait(fail: bool = False):
        bar = tqdm(total=10, desc="generate")
        bar.update(3)
        if fail:
            logging.getLogger("cgd.teachers.base").warning("teacher: 1 critique empty; asking again")
            raise HarnessError("teacher server failed after 6 attempts")
        print("ready", flush=True)
        time.sleep(120)

    sys.argv = ["harness", *sys.argv[1:]]
    main()
    """
)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


@pytest.mark.parametrize(
    "signum, status, how", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_a_stop_says_what_stopped_and_that_the_same_command_resumes(signum, status, how):
    proc = start("wait")
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert (
        last == f"stopped ({how}): harness wait; finished work is kept, run the same command again to resume"
    )
    assert "Traceback" not in err


def test_warnings_and_errors_never_share_the_progress_bars_line():
    proc = start("wait", "--fail")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    # What a terminal shows of each line is the text after its last carriage return.
    shown = [line.split("\r")[-1] for line in err.split("\n")]
    assert "error: teacher server failed after 6 attempts" in shown
    assert "WARNING cgd.teachers.base: teacher: 1 critique empty; asking again" in shown


def test_an_invalid_utf8_byte_is_named_by_its_line_and_byte(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    path = tmp_path / "amc23" / "test.jsonl"
    path.parent.mkdir()
    first = json.dumps({"id": 1, "problem": "x" * 9000, "answer": 2}).encode() + b"\n"  # past one 8 KB chunk
    second = b'{"id": 2, "problem": "caf\xe9?", "answer": 3}\n'  # Latin-1, not UTF-8
    path.write_bytes(first + second)
    with pytest.raises(HarnessError) as err:
        data.load_amc23()
    byte = second.index(b"\xe9") + 1
    assert str(err.value).startswith(f"{path}:2: not UTF-8 at byte {byte} of the line")
