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


# Test tiers (`pytest -m unit`, `-m integration`, `-m e2e`) are the folders: unit/ holds pure functions
# and case files; integration/ runs one component for real (a model, the sandbox, training, the engine,
# a server); e2e/ runs the pipeline through the command line. A test's folder is its marker.
TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.fspath}: a test lives in one of tests/{{{','.join(TIERS)}}}/")
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
