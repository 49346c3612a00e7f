"""`harness compare`: the whole pipeline for every method and the base model, in one resumable run.

data build (+ the validation split's annotations) → train each method (per seed) → evaluate base +
each variant, each summary logged to the training's tracker (harness_app/tracking.py) → refinement
uncertainty (cgd/uncertainty.py) → report.
Every step is a run-directory stage keyed by the hash of its inputs, so the same command after a
kill continues where it stopped, and a finished run re-runs in seconds. One compare at a time works
in a run directory (a second waits for the lock), and a run directory keeps the config it was made
with: another config is refused, so no report mixes models trained under different settings.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

from harness import distributed, layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json, stable_hash
from harness.provenance import git_revision, provenance
from harness.run import RunDir
from harness_app.run_config import RunConfig, from_record

log = logging.getLogger(__name__)


def _scoring_identity() -> str:
    """Hash of everything that shapes prompts, golds and verdicts: the task definitions, the benchmark
    objects and registry, the data loaders (GPQA's shuffle, TruthfulQA's targets), the lm-eval adapter
    and the checkers. A change to any of them re-runs the evaluation stage (identical generations still
    come from the cache)."""
    from harness import data, lm_eval_adapter, registry
    from harness.paths import REPO_ROOT, tasks_dir

    files = sorted(
        [
            *tasks_dir().rglob("*.yaml"),
            *tasks_dir().rglob("*.py"),
            *(REPO_ROOT / "harness" / "checkers").glob("*.py"),
            *(REPO_ROOT / "harness" / "benchmarks").glob("*.py"),
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
    options = cfg.backend_options(config.backend)

    def run_it():
        with open_backend(model_spec, config.backend, **options) as backend:
            info = {
                "name": model_spec if label == "base" else label,
                "fingerprint": backend.fingerprint,
                "backend": config.backend,
            }
            payload = evaluate_model(backend, info, cfg, run.path(layout.EVAL), label)
        outputs = [layout.results(label), *(layout.samples(label, t) for t in cfg.benchmarks)]
        # The typed copies of the samples (where pyarrow is installed) are checked like the JSONL.
        tables = [layout.samples_parquet(label, t) for t in cfg.benchmarks]
        outputs += [table for table in tables if run.path(table).exists()]
        return outputs, {"wall_seconds_by_task": payload["wall_seconds"]}

    return run.run_stage(f"eval:{label}", inputs, run_it)


# Settings that change how finished results are read or mirrored, never a model or a score: a run
# directory may be re-reported under new ones.
RE_REPORTABLE = ("analysis.", "train.report_to")


def config_changes(recorded: dict, wanted: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for each setting (dotted key) that differs between two config dicts."""
    changes = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(config_changes(old, new, f"{prefix}{key}."))
        elif old != new:
            changes.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return changes


def check_same_config(run: RunDir, config: RunConfig) -> None:
    """A run directory holds one config: refuse to write another over it, since the models the
    first one trained would then be reused or reported beside this config's (matched budgets broken)."""
    path = run.path(layout.CONFIG)
    if not path.exists():
        return
    record = read_json(path)
    if not isinstance(record, dict) or "run_id" not in record:
        raise HarnessError(f"{path}: not a compare run's config; give this compare its own -o")
    try:
        recorded = from_record(record).as_dict()
    except HarnessError as exc:
        raise HarnessError(
            f"{path}: its config no longer resolves ({exc}); give this compare a new -o"
        ) from None
    # The profile only names where the values came from; the values are what decide the models.
    changes = config_changes(
        {k: v for k, v in recorded.items() if k != "profile"},
        {k: v for k, v in config.as_dict().items() if k != "profile"},
    )
    changes = [c for c in changes if not c.startswith(RE_REPORTABLE)]
    if changes:
        raise HarnessError(
            f"{run.root} was made with other settings ({'; '.join(changes)}); its models would be "
            "reported beside this config's: give this compare a new -o (or remove the directory)"
        )


def compare(config: RunConfig, output: Path | None = None, report_dir: Path | None = None) -> Path:
    rid = config.run_id()
    run = RunDir(output or Path("runs") / rid)
    # Rank 0 alone holds the lock: the other ranks of a launch follow it through the barriers.
    with run.lock() if distributed.is_main() else nullcontext():
        return _compare(config, run, report_dir or Path("reports") / rid)


def _compare(config: RunConfig, run: RunDir, out: Path) -> Path:
    from cgd.hypotheses import HYPOTHESES
    from cgd.pipeline import build
    from cgd.train import check_matched_budget, train_method
    from harness.plan import plan_text
    from harness_app.report.build import write_report
    from harness_app.tracking import log_evaluation

    rid = config.run_id()
    # Under accelerate launch / torchrun every process trains; rank 0 alone builds, evaluates and writes.
    if distributed.is_main():
        check_same_config(run, config)
        atomic_write_json(
            run.path(layout.CONFIG),
            {**config.as_dict(), "run_id": rid, "git_revision": git_revision(), "provenance": provenance()},
        )
        log.info("run directory: %s", run.root)
        log.info("what this run can detect (harness plan):\n%s", plan_text(config.as_dict(), HYPOTHESES))
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
