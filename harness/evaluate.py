"""The evaluate stage: lm-eval's evaluator on our task definitions, through our backend.

Writes, per model, `results.json` (lm-eval shaped), `samples_<task>.jsonl` and `table.md` into
`<out_dir>/<label>/`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmarks import (
    BENCHMARKS,
    DEFAULT_MATH_GRADER,
    DEFAULT_REASONING_END,
    check_math_grader,
    grader_verdicts,
    sample_fields,
)
from harness.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from harness.paths import tasks_dir
from harness.provenance import provenance

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers; recorded in every results file."""

    benchmarks: list[str]
    limit: int | None = None
    seed: int = 0
    max_new_tokens: int | None = None  # None: each task's own default
    bootstrap_iters: int = 1000        # lm-eval's stderr for non-mean aggregations
    truthfulqa_version: str = "2021"
    gpqa_seed: int = 0
    task_max_new_tokens: dict[str, int] = field(default_factory=dict)
    math_grader: str = DEFAULT_MATH_GRADER  # math-verify | qwen | both (harness.benchmarks.score_math)
    reasoning_end: str = DEFAULT_REASONING_END  # checkers score the text after the last one; "" = off

    def __post_init__(self) -> None:
        check_math_grader(self.math_grader)

    def metadata(self) -> dict[str, Any]:
        return {"truthfulqa_version": self.truthfulqa_version, "gpqa_seed": self.gpqa_seed,
                "math_grader": self.math_grader, "reasoning_end": self.reasoning_end}


def _task_manager(cfg: EvalConfig):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=cfg.metadata())


def evaluate_model(backend, model_info: dict, cfg: EvalConfig, out_dir: Path, label: str) -> dict:
    """Run every benchmark in `cfg` on `backend`; write and return the results payload."""
    import lm_eval
    from lm_eval import simple_evaluate

    from harness.lm import HarnessLM

    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # lm-eval logs prompts at INFO; GPQA must not leak
    logging.getLogger("lm_eval.api.task").setLevel(logging.ERROR)  # a warning per custom_dataset task, every run
    per_task = {**cfg.task_max_new_tokens}
    lm = HarnessLM(backend, max_new_tokens=cfg.max_new_tokens if cfg.max_new_tokens else per_task or None)
    manager = _task_manager(cfg)
    merged: dict[str, Any] = {"results": {}, "versions": {}, "n-samples": {}, "configs": {}, "higher_is_better": {}}
    samples: dict[str, list] = {}
    wall: dict[str, float] = {}
    # Chat templating is a per-call switch in lm-eval; group tasks so each gets its own setting.
    for chat in (True, False):
        tasks = [t for t in cfg.benchmarks if BENCHMARKS[t].chat == chat]
        for task in tasks:  # one task per call so wall time is attributable per benchmark
            started = time.time()
            out = simple_evaluate(
                model=lm, tasks=[task], limit=cfg.limit, task_manager=manager, apply_chat_template=chat,
                log_samples=True, bootstrap_iters=cfg.bootstrap_iters, random_seed=cfg.seed,
                numpy_random_seed=cfg.seed, torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed,
                confirm_run_unsafe_code=True,
            )
            wall[task] = round(time.time() - started, 3)
            for key in merged:
                merged[key].update(out.get(key, {}))
            samples[task] = out["samples"][task]
    records, timing = {}, {}
    for task, rows in samples.items():
        records[task], timing[task] = _records(task, rows, lm)
    payload = {
        **merged,
        "model": model_info,
        "label": label,
        "eval_config": asdict(cfg),
        "wall_seconds": wall,
        "generation": {task: _throughput(timing[task], wall[task]) for task in records},
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
        **provenance(),
    }
    target = out_dir / label
    for task, recs in records.items():
        atomic_write_jsonl(target / f"samples_{task}.jsonl", recs)
        if timing[task]:
            atomic_write_jsonl(target / f"timing_{task}.jsonl", timing[task])
    atomic_write_json(target / "results.json", payload)
    atomic_write_text(target / "table.md", results_table({label: payload}))
    return payload


def _records(task: str, rows: list[dict], lm) -> tuple[list[dict], list[dict]]:
    """(per-sample records, per-sample timings). Timings live apart so that records are byte-identical
    across runs with the same config and seed."""
    bench = BENCHMARKS[task]
    records, timings = [], []
    for row in sorted(rows, key=lambda r: r["doc_id"]):
        prompt = row["arguments"][0][0]
        response = row["resps"][0][0] if bench.output_type == "generate_until" else None
        gen = lm.generations.get(prompt) if response is not None else None
        record = {
            "task": task,
            "doc_id": row["doc_id"],
            **sample_fields(task, row["doc"], response if response is not None else row["filtered_resps"]),
            "prompt": prompt,
            "response": response,
            "metrics": {m: row[m] for m in row["metrics"]},
            **_verdicts(row),
            "prompt_tokens": gen.prompt_tokens if gen else None,
            "completion_tokens": gen.completion_tokens if gen else None,
            "finish_reason": gen.finish_reason if gen else None,
        }
        if bench.redact:  # GPQA: ids, letters and scores only, never question or answer text
            record["prompt"] = record["response"] = None
        records.append(record)
        if gen is not None:
            timings.append({"doc_id": row["doc_id"], "seconds": round(gen.seconds, 4), "cached": gen.cached,
                            "completion_tokens": gen.completion_tokens})
    return records, timings


def _verdicts(row: dict) -> dict:
    verdicts = grader_verdicts({m: row[m] for m in row["metrics"]})
    return {} if verdicts is None else {"verdicts": verdicts}


def _throughput(timings: list[dict], wall: float) -> dict:
    """Useful tokens (up to each answer's end) per second of the task's wall time; cache hits excluded."""
    fresh = [t for t in timings if not t["cached"]]
    tokens = sum(t["completion_tokens"] for t in fresh)
    return {"completion_tokens": tokens, "generated_items": len(fresh),
            "cached_items": len(timings) - len(fresh),
            "tokens_per_second": round(tokens / wall, 2) if wall > 0 and tokens else None}


def headline(payload: dict, task: str) -> tuple[float | None, float | None]:
    metric = BENCHMARKS[task].metric
    res = payload["results"].get(task, {})
    value, err = res.get(f"{metric},none"), res.get(f"{metric}_stderr,none")
    return value, (err if isinstance(err, (int, float)) else None)


def results_table(payloads: dict[str, dict]) -> str:
    """Markdown table: one row per benchmark, one column per model, headline metric in percent."""
    labels = list(payloads)
    tasks = [t for t in BENCHMARKS if any(t in p["results"] for p in payloads.values())]
    lines = ["| benchmark | metric | n | " + " | ".join(labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for task in tasks:
        cells = []
        for label in labels:
            value, err = headline(payloads[label], task)
            cells.append("–" if value is None else f"{100 * value:.1f}" + (f" ± {100 * err:.1f}" if err else ""))
        n = next((p["n-samples"].get(task, {}).get("effective") for p in payloads.values() if task in p["n-samples"]), "")
        lines.append(f"| {task} | {BENCHMARKS[task].metric} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_eval(model: str, benchmarks: str, limit: int | None, run_dir: Path, backend: str = "hf", seed: int = 0,
             max_new_tokens: int | None = None, batch_size: int = 16, truthfulqa_version: str = "2021",
             gpqa_seed: int = 0, label: str | None = None, math_grader: str = DEFAULT_MATH_GRADER,
             reasoning_end: str = DEFAULT_REASONING_END) -> dict:
    """`harness eval`: resolve, evaluate, write the run directory, print the table."""
    import typer

    from harness.backends import make_backend
    from harness.benchmarks import resolve_benchmarks
    from harness.errors import HarnessError
    from harness.io import atomic_write_json

    if truthfulqa_version not in ("2021", "2025"):
        raise HarnessError(f"unknown TruthfulQA version {truthfulqa_version!r}: choose 2021 or 2025")
    cfg = EvalConfig(benchmarks=resolve_benchmarks(benchmarks), limit=limit, seed=seed, max_new_tokens=max_new_tokens,
                     truthfulqa_version=truthfulqa_version, gpqa_seed=gpqa_seed, math_grader=math_grader,
                     reasoning_end=reasoning_end)
    options = {"batch_size": batch_size} if backend == "hf" else {}
    engine = make_backend(model, backend, **options)
    label = label or _label(model)
    model_info = {"name": model, "fingerprint": engine.fingerprint, "backend": backend}
    payload = evaluate_model(engine, model_info, cfg, run_dir / "eval", label)
    atomic_write_json(run_dir / "config.json", {"command": "eval", "model": model_info, "eval": asdict(cfg),
                                                **provenance()})
    typer.echo(results_table({label: payload}))
    typer.echo(f"run directory: {run_dir}")
    return payload


def _label(model: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)
