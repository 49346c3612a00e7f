"""Hostile programs against the code sandbox (cases in tests/cases/code_hostile.jsonl).

Every case runs twice: through `check_humaneval` (judge and candidate in separate sandboxes) and
through `run_program` (the program with the test appended, one process). Contained means:
- no pass: every case answers wrongly or not at all, and a pass would be forged;
- the status is one the case allows, and the verdict arrives: the time bound asserted is a
  liveness check (generous: timeout * 3 + 5 s), not a performance figure;
- a canary file outside the sandbox is unchanged and its directory gains nothing;
- no process started by the sample is left (they carry a marker in their argv);
- a fake secret in this process's environment does not show up in the verdict;
- nothing connects to a server this test listens on;
- the sandbox's temporary directories are gone.
Cases that need a lock-down layer this machine lacks are expected to fail (xfail), or skipped when
the attack, if it worked, would hit this test process or the machine (fork bomb, kill parent).
"""

from __future__ import annotations

import json
import signal
import socket
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from harness.checkers import sandbox
from harness.checkers.code import check_humaneval, run_program

CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "cases" / "code_hostile.jsonl").read_text().splitlines()
    if line.strip()
]
PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
TIMEOUT_S = 2.0
MEMORY_MB = 256  # memory bombs touch what they get: keep the shared machine's RAM free
LIVENESS_BOUND_S = TIMEOUT_S * 3 + 5
CANARY_TEXT = "the sandbox must not touch this\n"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    path = folder / "canary.txt"
    path.write_text(CANARY_TEXT)
    path.chmod(0o644)
    return path


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def signals_received():
    """SIGWINCH deliveries to this process: a broadcast signal that escaped would land here."""
    received: list[int] = []
    previous = signal.signal(signal.SIGWINCH, lambda number, frame: received.append(number))
    yield received
    signal.signal(signal.SIGWINCH, previous)


@pytest.fixture
def sandbox_tmp(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "sandbox-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _snapshot(path: Path) -> tuple:
    stat = path.stat()
    listing = sorted(entry.name for entry in path.parent.iterdir())
    return path.read_bytes(), stat.st_mode, stat.st_mtime_ns, stat.st_uid, listing


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass  # it ended while we looked
    return found


def _apply_isolation_expectations(case: dict, request) -> None:
    missing = set(case["needs"]) & set(sandbox.missing_isolation(sandbox.isolation_report()))
    if not missing:
        return
    reason = f"this machine grants no {', '.join(sorted(missing))} isolation (docs/sandbox.md)"
    if case["dangerous"]:
        pytest.skip(f"{reason}; the attack would hit the test process or the machine")
    request.applymarker(pytest.mark.xfail(reason=reason, strict=False))


@pytest.mark.parametrize("mode", ["judged", "script"])
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_hostile_program_is_contained(
    case, mode, canary, listener, signals_received, sandbox_tmp, monkeypatch, request
):
    _apply_isolation_expectations(case, request)
    if mode == "script" and case["script"] == "forgeable":
        request.applymarker(
            pytest.mark.xfail(
                reason="run_program trusts in-process checks; check_humaneval is the scorer",
                strict=True,
            )
        )
    secret = f"sk-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    marker = f"hostile-marker-{uuid.uuid4().hex}"
    program = (
        case["program"]
        .replace("@CANARY@", str(canary))
        .replace("@PORT@", str(listener.getsockname()[1]))
        .replace("@MARKER@", marker)
    )
    before = _snapshot(canary)

    started = time.monotonic()
    if mode == "judged":
        verdict = check_humaneval(PROMPT, program, TEST, "add", timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB)
    else:
        script = f"{program}\n\n{TEST}\ncheck(add)\n"
        verdict = run_program(script, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB)
    elapsed = time.monotonic() - started

    assert not verdict.passed, f"forged pass: {verdict}"
    assert verdict.status in case["statuses"], verdict
    assert elapsed < LIVENESS_BOUND_S, f"no verdict within the liveness bound: {elapsed:.1f} s"
    assert _snapshot(canary) == before
    assert _processes_with(marker) == []
    assert secret not in verdict.detail
    assert signals_received == []
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert list(sandbox_tmp.iterdir()) == []
    assert len(verdict.detail) <= 400
    for text in case["forbid_in_detail"]:
        assert text not in verdict.detail, verdict.detail
    for text in case["expect_in_detail"]:
        assert text in verdict.detail, verdict.detail


def test_the_machine_reports_its_isolation_layers():
    report = sandbox.isolation_report()
    assert report.get("rlimits") == "on", report
    assert set(report) >= {"namespaces", "landlock", "landlock_net", "landlock_scope", "seccomp"}
    assert all(value == "on" or value.startswith("off: ") for value in report.values()), report


def test_missing_layers_are_named_in_the_verdict(monkeypatch):
    partial = {"rlimits": "on", "namespaces": "off: EPERM", "landlock": "on", "seccomp": "off: x"}
    assert sandbox.missing_isolation(partial) == ["network", "filesystem", "signals", "processes"]

    real_run_script = sandbox.run_script

    def without_network_layers(source, limits):
        result = real_run_script(source, limits)
        return replace(result, main=replace(result.main, layers=partial))

    monkeypatch.setattr(sandbox, "run_script", without_network_layers)
    verdict = run_program("pass", timeout_s=TIMEOUT_S)
    assert verdict.passed
    assert "not isolated: network, filesystem, signals, processes" in verdict.detail
