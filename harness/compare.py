"""`harness compare`: the whole pipeline for every method and the base model, in one resumable run.

data build → train each method (per seed) → evaluate base + each variant → report.
Every step is a run-directory stage keyed by the hash of its inputs, so the same command after a
kill continues where it stopped, and a finished run re-runs in seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness import distributed
from harness.config import resolve_config
from harness.errors import HarnessError
from harness.findings import AnalysisConfig
from harness.io import atomic_write_json, stable_hash
from harness.provenance import git_revision, provenance
from harness.run import RunDir

log = logging.getLogger(__name__)


def run_id(config: dict) -> str:
    """Same resolved config → same run directory, which is what makes re-running resume."""
    return f"compare-{config['profile']}-{stable_hash(config)[:10]}"


def labels(config: dict) -> list[tuple[str, str, int]]:
    """(label, method, seed) for every trained variant; the seed suffix appears only with several seeds."""
    seeds = config["seeds"]
    return [(m if len(seeds) == 1 else f"{m}@seed{s}", m, s) for m in config["methods"] for s in seeds]


def _build_config(config: dict):
    from cgd.build import BuildConfig
    from cgd.problems import MATH_COLUMNS, ProblemsConfig

    data = config["data"]
    problems = ProblemsConfig(
        source=data["source"],
        n=data["n_problems"],
        n_val=data["n_val"],
        seed=config["seeds"][0],
        subjects=tuple(data["subjects"]),
        levels=tuple(int(x) for x in data["levels"]),
        columns={**MATH_COLUMNS, **data["columns"]} if data["columns"] else dict(MATH_COLUMNS),
    )
    return BuildConfig(
        methods=list(config["methods"]),
        model=config["model"],
        backend=config["backend"],
        probe_max_new_tokens=data["probe_max_new_tokens"],
        teacher=config["teacher"],
        teacher_options=_teacher_options(config),
        teacher_file=config["teacher_file"],
        problems=problems,
        seed=config["seeds"][0],
        right_ratio=data["right_ratio"],
    )


def _teacher_options(config: dict) -> dict:
    """The keys set in the profile's teacher_options; null ones leave the teacher's own default."""
    return {k: v for k, v in config["teacher_options"].items() if v is not None}


def _train_config(config: dict, seed: int):
    from cgd.train import TrainConfig

    return TrainConfig(model=config["model"], seed=seed, **config["train"])


def _eval_config(config: dict):
    from harness.benchmarks import resolve_benchmarks
    from harness.evaluate import EvalConfig

    ev = config["eval"]
    return EvalConfig(
        benchmarks=resolve_benchmarks(
            ev["benchmarks"] if isinstance(ev["benchmarks"], str) else ",".join(ev["benchmarks"])
        ),
        limit=ev["limit"],
        seed=config["seeds"][0],
        max_new_tokens=ev["max_new_tokens"],
        truthfulqa_version=str(ev["truthfulqa_version"]),
        gpqa_seed=ev["gpqa_seed"],
        math_grader=str(ev["math_grader"]),
        reasoning_end=str(ev["reasoning_end"] or ""),
    )


def _vllm_options(config: dict) -> dict:
    from harness.backends.vllm import check_data_parallel

    check_data_parallel(config["eval"]["vllm"]["data_parallel_size"])
    return dict(config["eval"]["vllm"])


def _scoring_identity() -> str:
    """Hash of the task definitions and checkers: a change to either re-scores (generations stay cached)."""
    from harness.paths import REPO_ROOT, tasks_dir

    files = sorted(
        [
            *tasks_dir().rglob("*.yaml"),
            *tasks_dir().rglob("*.py"),
            *(REPO_ROOT / "harness" / "checkers").glob("*.py"),
            REPO_ROOT / "harness" / "benchmarks.py",
        ]
    )
    return stable_hash(
        [(str(p.relative_to(p.parents[1])), p.read_text(encoding="utf-8")) for p in files if p.exists()]
    )


def evaluate_stage(run: RunDir, config: dict, label: str, model_spec: str) -> dict:
    from harness.backends import open_backend
    from harness.evaluate import evaluate_model
    from harness.models import resolve_model

    cfg = _eval_config(config)
    fingerprint = resolve_model(model_spec).fingerprint
    inputs = {
        "model": fingerprint,
        "eval": cfg.__dict__,
        "backend": config["backend"],
        "scoring": _scoring_identity(),
    }
    options = {}
    if config["backend"] == "vllm":
        options = _vllm_options(config)
        inputs["vllm"] = options  # tensor parallelism may change the rounding, so it is part of the stage

    def run_it():
        with open_backend(model_spec, config["backend"], **options) as backend:
            info = {
                "name": model_spec if label == "base" else label,
                "fingerprint": backend.fingerprint,
                "backend": config["backend"],
            }
            payload = evaluate_model(backend, info, cfg, run.path("eval"), label)
        outputs = [f"eval/{label}/results.json", *(f"eval/{label}/samples_{t}.jsonl" for t in cfg.benchmarks)]
        return outputs, {"wall_seconds_by_task": payload["wall_seconds"]}

    return run.run_stage(f"eval:{label}", inputs, run_it)


def compare(
    profile: str, overrides: list[str], output: Path | None = None, report_dir: Path | None = None
) -> Path:
    from cgd.build import build, check_right_ratio
    from cgd.methods import check_methods
    from cgd.train import check_matched_budget, train_method
    from harness.plan import plan_text
    from harness.report.build import write_report

    config = resolve_config(profile, overrides)
    check_methods(list(config["methods"]))
    if not config["seeds"] or not all(isinstance(s, int) for s in config["seeds"]):
        raise HarnessError(f"seeds must be a non-empty list of integers, got {config['seeds']!r}")
    _eval_config(config)  # fail on a bad benchmark name before hours of training
    if not config["teacher_file"]:
        from cgd.teachers import check_options

        check_options(config["teacher"], _teacher_options(config))
    check_right_ratio(config["data"]["right_ratio"])
    if config["backend"] == "vllm":
        _vllm_options(config)
    AnalysisConfig.from_config(config)  # and on a bad analysis section
    rid = run_id(config)
    run = RunDir(output or Path("runs") / rid)
    out = report_dir or Path("reports") / rid
    # Under accelerate launch / torchrun every process trains; rank 0 alone builds, evaluates and writes.
    if distributed.is_main():
        atomic_write_json(
            run.path("config.json"),
            {**config, "run_id": rid, "git_revision": git_revision(), "provenance": provenance()},
        )
        log.info("run directory: %s", run.root)
        log.info("what this run can detect (harness plan):\n%s", plan_text(config))
        build(run, _build_config(config))
    distributed.barrier()
    variants = []
    for label, method, seed in labels(config):
        summary = train_method(run, method, _train_config(config, seed), label=label)
        variants.append((label, str(run.path("train", label, "checkpoint")), summary))
    check_matched_budget(run)
    distributed.release()
    if not distributed.is_main():
        return out
    evaluate_stage(run, config, "base", config["model"])
    for label, checkpoint, _ in variants:
        evaluate_stage(run, config, label, checkpoint)
    write_report(run.root, out)
    return out
