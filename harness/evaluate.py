"""The evaluate stage: lm-eval's evaluator on our task definitions, through our backend.

Writes, per model, the files of harness/eval_files.py into `<out_dir>/<label>/` (with a shard: into
`<out_dir>/<label>/shards/shard-K-of-N/`, harness/shards.py). The `eval:` section is
harness/eval_config.py; the `harness eval` command is harness_app/cli/eval.py.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import layout
from harness.benchmarks.base import Score, kept_scores, score_key
from harness.errors import HarnessError
from harness.eval_config import EvalConfig, task_manager
from harness.eval_files import throughput, write_eval_files
from harness.provenance import provenance
from harness.registry import BENCHMARKS, grader_verdicts, item_id
from harness.shards import Shard

log = logging.getLogger(__name__)


def _shard_docs(manager, task: str, limit: int | None, shard: Shard) -> list[int]:
    """Indices of the docs (of the first `limit`) that belong to the shard."""
    from lm_eval.tasks import get_task_dict

    docs = get_task_dict([task], manager)[task].eval_docs
    n = len(docs) if limit is None else min(limit, len(docs))
    return [i for i in range(n) if shard.takes(task, item_id(docs[i]))]


def evaluate_model(
    backend, model_info: dict, cfg: EvalConfig, out_dir: Path, label: str, shard: Shard | None = None
) -> dict:
    """Run every benchmark in `cfg` on `backend` (only the shard's items with `shard`); write and return the payload."""
    import lm_eval
    from lm_eval import simple_evaluate

    from harness.lm_eval_adapter import HarnessLM

    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # lm-eval logs prompts at INFO; GPQA must not leak
    logging.getLogger("lm_eval.api.task").setLevel(
        logging.ERROR
    )  # a warning per custom_dataset task, every run
    lm = HarnessLM(backend, max_new_tokens=cfg.max_new_tokens)
    manager = task_manager(cfg)
    merged: dict[str, Any] = {
        "results": {},
        "versions": {},
        "n-samples": {},
        "configs": {},
        "higher_is_better": {},
    }
    samples: dict[str, list] = {}
    wall: dict[str, float] = {}
    with kept_scores() as scores:  # the Scores process_results computed, for the records
        for task in cfg.task_order():  # one task per call so wall time is attributable per benchmark
            started = time.time()
            selection = {"limit": cfg.limit}
            if shard is not None:
                docs = _shard_docs(manager, task, cfg.limit, shard)
                if not docs:  # lm-eval reads an empty selection as "every doc"
                    samples[task], wall[task] = [], 0.0
                    continue
                selection = {"limit": None, "samples": {task: docs}}
            with _whole_evaluation():
                out = simple_evaluate(
                    model=lm,
                    tasks=[task],
                    task_manager=manager,
                    apply_chat_template=BENCHMARKS[task].chat,
                    log_samples=True,
                    bootstrap_iters=cfg.bootstrap_iters,
                    random_seed=cfg.seed,
                    numpy_random_seed=cfg.seed,
                    torch_random_seed=cfg.seed,
                    fewshot_random_seed=cfg.seed,
                    confirm_run_unsafe_code=True,
                    **selection,
                )
            wall[task] = round(time.time() - started, 3)
            for key in merged:
                merged[key].update(out.get(key, {}))
            samples[task] = out["samples"][task]
    records, timing = {}, {}
    for task, rows in samples.items():
        records[task], timing[task] = _records(task, rows, lm, scores)
    payload = {
        **merged,
        "model": model_info,
        "label": label,
        "eval_config": asdict(cfg),
        "wall_seconds": wall,
        "generation": {task: throughput(timing[task], wall[task]) for task in records},
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
        **provenance(),
    }
    target = out_dir / label
    if shard is not None:
        payload["shard"] = {"index": shard.index, "count": shard.count}
        target = target / layout.SHARDS / shard.name
    write_eval_files(target, label, payload, records, timing)
    return payload


@contextmanager
def _whole_evaluation():
    """lm-eval takes a process whose LOCAL_RANK is not 0 for a tensor-parallel worker and returns it no
    results; under our launches every process evaluates a shard of its own."""
    saved = os.environ.get("LOCAL_RANK")
    os.environ["LOCAL_RANK"] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LOCAL_RANK", None)
        else:
            os.environ["LOCAL_RANK"] = saved


def _records(task: str, rows: list[dict], lm, scores: dict[tuple, Score]) -> tuple[list[dict], list[dict]]:
    """(per-sample records, per-sample timings). Timings live apart so that records are byte-identical
    across runs with the same config and seed. A generative record's answer is its kept Score's."""
    bench = BENCHMARKS[task]
    records, timings = [], []
    for row in sorted(rows, key=lambda r: r["doc_id"]):
        prompt = row["arguments"][0][0]
        response = row["resps"][0][0] if bench.output_type == "generate_until" else None
        gen = lm.generations.get(prompt) if response is not None else None
        if response is None:
            fields = bench.record_fields(row["doc"], row["filtered_resps"])
        else:
            fields = bench.record_fields(
                row["doc"], response, _kept_score(scores, task, row["doc"], response)
            )
        record = {
            "task": task,
            "doc_id": row["doc_id"],
            **fields,
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
            timings.append(
                {
                    "doc_id": row["doc_id"],
                    "seconds": round(gen.seconds, 4),
                    "cached": gen.cached,
                    "completion_tokens": gen.completion_tokens,
                }
            )
    return records, timings


def _kept_score(scores: dict[tuple, Score], task: str, doc: dict, response: str) -> Score:
    try:
        return scores[score_key(task, doc, response)]
    except KeyError:
        raise HarnessError(
            f"{task}: item {item_id(doc)} has no score: lm-eval did not score it with the task's "
            "process_results (tasks/*/*.yaml must be what python -m harness.benchmarks.tasks writes)"
        ) from None


def _verdicts(row: dict) -> dict:
    verdicts = grader_verdicts({m: row[m] for m in row["metrics"]})
    return {} if verdicts is None else {"verdicts": verdicts}
