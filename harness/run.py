"""The run directory: every stage records the hash of what it read and of each file it wrote.

A stage whose recorded inputs hash matches and whose outputs still hash to what it recorded is
skipped, so killing a run and starting the same command again continues where it stopped. An output
that is missing, edited or truncated is never reused: the stage runs again (one warning names the
file), and a stage that reads another's output checks it first (`input_hash`). One process at a time
works in a run directory (`lock`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, sha256_file, stable_hash

log = logging.getLogger(__name__)

MANIFEST = layout.MANIFEST
# Fault injection for the resume tests: with HARNESS_FAULT=<stage> the process dies (as SIGKILL would
# leave it: no cleanup, no exit handlers) the moment that stage's outputs are written and before the
# manifest records it, the worst place a kill can land at a stage boundary.
FAULT_ENV = "HARNESS_FAULT"
FAULT_EXIT = 137
# Files this large (model weights) are re-read only when their size or modification time changed
# since they were hashed, as git does; every smaller file is hashed in full at each check.
_MEMO_BYTES = 64 << 20


def content_hash(path: Path) -> str | None:
    """sha256 of a file; of a directory, of its files' relative paths and hashes; None when missing."""
    if path.is_file():
        return _file_hash(path)
    if not path.is_dir():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return stable_hash([(p.relative_to(path).as_posix(), _file_hash(p)) for p in files])


def _file_hash(path: Path) -> str:
    stat = path.stat()
    if stat.st_size < _MEMO_BYTES:
        return sha256_file(path)
    from harness.paths import harness_home

    key = stable_hash([str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino])
    memo = harness_home() / "hashes" / f"{key}.json"
    if memo.exists():
        return json.loads(memo.read_text(encoding="utf-8"))["sha256"]
    digest = sha256_file(path)
    atomic_write_json(memo, {"path": str(path), "sha256": digest})
    return digest


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the run directory `root` ({"stages": {}} when there is none)."""
    file = root / MANIFEST
    if not file.exists():
        return {"stages": {}}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        # Written atomically, so this means someone edited it: start the bookkeeping afresh.
        log.warning("%s is not valid JSON; every stage will re-run", file)
        return {"stages": {}}


def changed_output(root: Path, stage: str, record: dict) -> str | None:
    """Why a finished stage's outputs cannot be reused ('<file> is missing', '<file> changed since ...'),
    or None when each still hashes to what the stage recorded."""
    hashes = record.get("output_hashes")
    if hashes is None:
        return f"stage {stage} was recorded by an older harness, without its outputs' hashes"
    for out in record.get("outputs", []):
        digest = content_hash(root / out)
        if digest is None:
            return f"{out} is missing"
        if digest != hashes.get(out):
            return f"{out} changed since stage {stage} wrote it (edited or truncated)"
    return None


def _recorded(root: Path, relpath: str) -> tuple[str, str, dict] | None:
    """(stage, output, record) of the stage whose recorded output is `relpath` or a directory holding it."""
    for stage, record in read_manifest(root)["stages"].items():
        for out in record.get("outputs", []):
            if relpath == out or relpath.startswith(out.rstrip("/") + "/"):
                return stage, out, record
    return None


def check_recorded(root: Path, relpath: str, remedy: str) -> None:
    """Raise, naming the file and `remedy`, when `relpath` belongs to a stage's recorded output whose
    content no longer matches the record (a record without hashes cannot be checked, so passes)."""
    found = _recorded(root, relpath)
    if found is None:
        return
    stage, out, record = found
    expected = (record.get("output_hashes") or {}).get(out)
    if expected is None:
        return
    digest = content_hash(root / out)
    if digest != expected:
        how = (
            "is missing" if digest is None else f"changed since stage {stage} wrote it (edited or truncated)"
        )
        raise HarnessError(f"{root / out} {how}; {remedy}")


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot create run directory {self.root}: {exc.strerror}") from None

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def _manifest(self) -> dict[str, Any]:
        return read_manifest(self.root)

    def stage_record(self, stage: str) -> dict[str, Any] | None:
        return self._manifest()["stages"].get(stage)

    def is_done(self, stage: str, inputs_hash: str) -> bool:
        """True when the stage finished with these inputs and every output is as it wrote it; an output
        that is not (missing, edited, truncated) is named in a warning and the stage runs again."""
        rec = self.stage_record(stage)
        if not rec or rec.get("inputs_hash") != inputs_hash:
            return False
        why = changed_output(self.root, stage, rec)
        if why is not None:
            log.warning("%s; running stage %s again to regenerate it", why, stage)
            return False
        return True

    def mark_done(self, stage: str, inputs_hash: str, outputs: list[str], info: dict | None = None) -> None:
        if os.environ.get(FAULT_ENV) == stage:
            log.warning("%s=%s: dying before the manifest records the stage", FAULT_ENV, stage)
            os._exit(FAULT_EXIT)
        hashes = {out: content_hash(self.path(out)) for out in outputs}
        missing = [out for out, digest in hashes.items() if digest is None]
        if missing:  # a stage that says it wrote a file it did not: a bug, never a record to trust
            raise HarnessError(f"stage {stage} did not write {', '.join(missing)}")
        manifest = self._manifest()
        manifest["stages"][stage] = {
            "inputs_hash": inputs_hash,
            "outputs": sorted(outputs),
            "output_hashes": dict(sorted(hashes.items())),
            "info": info or {},
        }
        atomic_write_json(self.path(MANIFEST), manifest)

    def input_hash(self, relpath: str) -> str:
        """The sha256 of a file a stage reads, after checking it is what the stage that wrote it recorded:
        a stage never builds on an edited or truncated output of another."""
        check_recorded(self.root, relpath, "run the stage that writes it again (the same command does)")
        return sha256_file(self.path(relpath))

    def run_stage(
        self,
        stage: str,
        inputs: Any,
        fn: Callable[[], tuple[list[str], dict] | list[str]],
    ) -> dict[str, Any]:
        """Run `fn` unless the stage already finished with the same inputs.

        `fn` writes its outputs (paths relative to the run dir) and returns them, optionally with an
        info dict (timings, counts) that is kept in the manifest.
        """
        inputs_hash = stable_hash(inputs)
        if self.is_done(stage, inputs_hash):
            log.info("stage %s: up to date, skipped", stage)
            return self.stage_record(stage) or {}
        started = time.time()
        result = fn()
        outputs, info = result if isinstance(result, tuple) else (result, {})
        info = {**info, "wall_seconds": round(time.time() - started, 3)}
        self.mark_done(stage, inputs_hash, list(outputs), info)
        return self.stage_record(stage) or {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory's lock: a second process on the same directory waits here until the
        first is done, then finds its stages finished (it never redoes them alongside the first)."""
        path = self.path(layout.LOCK)
        with open(path, "a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                log.warning(
                    "%s is in use by %s; waiting for it to finish (its finished stages are then reused)",
                    self.root,
                    holder,
                )
                fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}\n")
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
