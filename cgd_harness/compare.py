"""`harness compare`: the whole pipeline for every method and the base model, in one resumable run.

data build (+ the validation split's annotations) → train each method (per seed) → evaluate base +
each variant, each summary logged to the training's tracker (cgd_harness/tracking.py) → refinement
uncertainty (cgd/uncertainty.py) → report.
Every step is a run-directory stage keyed by the hash of its inputs, so the same command after a
kill continues where it stopped, and a finished run re-runs in seconds.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from cgd_harness.run_config import RunConfig
from harness import distributed, layout
from harness.io import atomic_write_json, stable_hash
from harness.provenance import git_revision, provenance
from harness.run import RunDir

log = logging.getLogger(__name__)


def _scoring_identity() -> str:
    """Hash of everything that shapes prompts, golds and verdicts: the task definitions, the registry,
    the data loaders (GPQA's shuffle, TruthfulQA's targets), the lm-eval adapter and the checkers. A change
    to any of them re-runs the evaluation stage (identical generations still come from the cache)."""
    from harness import data, lm_eval_adapter, registry
    from harness.paths import REPO_ROOT, tasks_dir

    files = sorted(
        [
            *tasks_dir().rglob("*.yaml"),
            *tasks_dir().rglob("*.py"),
            *(REPO_ROOT / "harness" / "checkers").glob("*.py"),
            *(Path(module.__file__) for module in (registry, data, lm_eval_adapter)),
        ]
    )
    return stable_hash(
        [(str(p.relative_to(p.parents[1])), p.read_text(encoding="utf-8")) for p in files if p.exists()]
    )


def evaluate_stage(run: RunDir, config: RunConfig, label: str, model_spec: str) -> dict:
    from harness.backends import open_backend
    from harness.evaluate import evaluate_model
    from harness.models import resolve_model

    cfg = config.eval
    fingerprint = resolve_model(model_spec).fingerprint
    inputs = {
        "model": fingerprint,
        # vLLM's engine options are part of it: tensor parallelism may change the rounding
        "eval": cfg.identity(config.backend),
        "backend": config.backend,
        "scoring": _scoring_identity(),
    }
    options = asdict(cfg.vllm) if config.backend == "vllm" else {}

    def run_it():
        with open_backend(model_spec, config.backend, **options) as backend:
            info = {
                "name": model_spec if label == "base" else label,
                "fingerprint": backend.fingerprint,
                "backend": config.backend,
            }
            payload = evaluate_model(backend, info, cfg, run.path(layout.EVAL), label)
        outputs = [layout.results(label), *(layout.samples(label, t) for t in cfg.benchmarks)]
        return outputs, {"wall_seconds_by_task": payload["wall_seconds"]}

    return run.run_stage(f"eval:{label}", inputs, run_it)


def compare(config: RunConfig, output: Path | None = None, report_dir: Path | None = None) -> Path:
    from cgd.pipeline import build
    from cgd.train import check_matched_budget, train_method
    from cgd_harness.report.build import write_report
    from cgd_harness.tracking import log_evaluation
    from harness.plan import plan_text

    rid = config.run_id()
    run = RunDir(output or Path("runs") / rid)
    out = report_dir or Path("reports") / rid
    # Under accelerate launch / torchrun every process trains; rank 0 alone builds, evaluates and writes.
    if distributed.is_main():
        atomic_write_json(
            run.path(layout.CONFIG),
            {**config.as_dict(), "run_id": rid, "git_revision": git_revision(), "provenance": provenance()},
        )
        log.info("run directory: %s", run.root)
        log.info("what this run can detect (harness plan):\n%s", plan_text(config.as_dict()))
        build(run, config.build_config())
        if config.uncertainty_wanted():
            from cgd.val_annotations import annotate_val

            annotate_val(run, config.build_config())
    distributed.barrier()
    variants = []
    for label, method, seed in config.labels():
        summary = train_method(run, method, config.train_config(seed), label=label, val=config.val_config())
        variants.append((label, str(run.path(layout.checkpoint(label))), summary))
    check_matched_budget(run)
    distributed.release()
    if not distributed.is_main():
        return out
    evaluate_stage(run, config, "base", config.model)
    log_evaluation(run, config.train.report_to, "base")
    for label, checkpoint, _ in variants:
        evaluate_stage(run, config, label, checkpoint)
        log_evaluation(run, config.train.report_to, label)
    if config.uncertainty_wanted():
        from cgd.uncertainty import analyze

        analyze(run, config.as_dict())
    write_report(run.root, out)
    return out
