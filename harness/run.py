"""The run directory: every stage records the hash of what it read and the files it wrote.

A stage whose recorded inputs hash matches and whose outputs still exist is skipped, so killing a
run and starting the same command again continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, stable_hash

log = logging.getLogger(__name__)

MANIFEST = layout.MANIFEST
# Fault injection for the resume tests: with HARNESS_FAULT=<stage> the process dies (as SIGKILL would
# leave it: no cleanup, no exit handlers) the moment that stage's outputs are written and before the
# manifest records it, the worst place a kill can land at a stage boundary.
FAULT_ENV = "HARNESS_FAULT"
FAULT_EXIT = 137


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
        file = self.path(MANIFEST)
        if not file.exists():
            return {"stages": {}}
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            # Written atomically, so this means someone edited it: start the bookkeeping afresh.
            log.warning("%s is not valid JSON; every stage will re-run", file)
            return {"stages": {}}

    def stage_record(self, stage: str) -> dict[str, Any] | None:
        return self._manifest()["stages"].get(stage)

    def is_done(self, stage: str, inputs_hash: str) -> bool:
        rec = self.stage_record(stage)
        if not rec or rec.get("inputs_hash") != inputs_hash:
            return False
        return all(self.path(out).exists() for out in rec.get("outputs", []))

    def mark_done(self, stage: str, inputs_hash: str, outputs: list[str], info: dict | None = None) -> None:
        if os.environ.get(FAULT_ENV) == stage:
            log.warning("%s=%s: dying before the manifest records the stage", FAULT_ENV, stage)
            os._exit(FAULT_EXIT)
        manifest = self._manifest()
        manifest["stages"][stage] = {
            "inputs_hash": inputs_hash,
            "outputs": sorted(outputs),
            "info": info or {},
        }
        atomic_write_json(self.path(MANIFEST), manifest)

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
