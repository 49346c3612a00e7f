"""Shared fixtures: an isolated HARNESS_HOME, the offline data dir, and a tiny random model."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SHARED_DATA = REPO.parent / "shared" / "data"

# Before any harness import: tests never touch the user's cache or the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "HARNESS_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["HARNESS_DATA_DIR"] = str(_SHARED_DATA)
# Set at import, not in a fixture: test modules import harness at collection time, and some
# imports write to HARNESS_HOME (NLTK data).
os.environ["HARNESS_HOME"] = tempfile.mkdtemp(prefix="harness_home_")


# Test tiers (`pytest -m unit`, `-m integration`, `-m e2e`): unit tests are pure functions and case
# files; integration tests run one component for real (a model, the sandbox, training, the engine);
# end-to-end tests run the pipeline through the command line. Files not listed are unit tests.
_INTEGRATION = {
    "test_backend.py", "test_backend_fast.py", "test_build.py", "test_checkers_code.py",
    "test_cli_errors.py", "test_decode_kernels.py", "test_humaneval_parity.py", "test_models.py",
    "test_sandbox_hostile.py", "test_tasks.py", "test_teachers.py", "test_trackers.py",
    "test_train.py", "test_truthfulqa_parity.py", "test_vllm_backend.py", "test_vllm_server.py",
}  # fmt: skip
_E2E = {
    "test_ci_gate.py", "test_e2e_compare.py", "test_e2e_eval.py", "test_e2e_run_integrity.py",
    "test_vllm_compare.py",
    "test_report_browser.py",
    "test_shards.py", "test_slow_real_model.py", "test_uncertainty.py",
}  # fmt: skip


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        name = Path(str(item.fspath)).name
        tier = "e2e" if name in _E2E else "integration" if name in _INTEGRATION else "unit"
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session", autouse=True)
def harness_home() -> Path:
    home = Path(os.environ["HARNESS_HOME"])
    from harness.nltk_setup import ensure_punkt_tab

    ensure_punkt_tab()
    return home


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("HARNESS_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("HARNESS_DATA_DIR is not set to the offline benchmark data")
    return Path(value)


@pytest.fixture(scope="session")
def humaneval(data_dir) -> list[dict]:
    """The 164 HumanEval problems, as the data file has them."""
    path = data_dir / "humaneval" / "HumanEval.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} is missing from HARNESS_DATA_DIR")
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def tiny_model(harness_home) -> Path:
    from harness.models import resolve_model

    return resolve_model("tiny-random").path


@pytest.fixture
def free_port() -> int:
    """A TCP port nobody listens on, for a torchrun rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def compare_run(tmp_path_factory, data_dir) -> tuple[Path, float]:
    """One small `ci` compare of every method (run/, report/, home/ under the returned dir) and its
    cold wall time; shared by the end-to-end and browser tests so the pipeline runs once a session."""
    from ci_compare import compare_cmd, run

    from cgd.methods import METHODS

    base = tmp_path_factory.mktemp("compare")
    started = time.time()
    proc = run(compare_cmd(base / "run", base / "report", "--methods", ",".join(METHODS)), base / "home")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return base, time.time() - started
