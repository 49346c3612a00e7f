"""The benchmark registry's lookups, and the names the evaluator, the probe and the analysis use.

Each benchmark is one object in harness/benchmarks (metadata, data, prompt, extraction, scoring,
drift hooks, lm-eval task); this module answers questions across them by name.
"""

from __future__ import annotations

from typing import Any

from harness.benchmarks import BENCHMARKS, Benchmark, get, item_id, register
from harness.benchmarks.base import Score, answer_part
from harness.benchmarks.math import (
    DEFAULT_MATH_GRADER,
    GRADER_METRICS,
    GRADER_TIMEOUTS,
    MATH_COUNTERS,
    MATH_GRADERS,
    MATH_PROMPT,
    check_math_grader,
    math_prompt,
    score_math,
)
from harness.checkers.reasoning import DEFAULT_END_MARKER as DEFAULT_REASONING_END
from harness.errors import HarnessError

__all__ = [
    "BENCHMARKS",
    "DEFAULT_MATH_GRADER",
    "DEFAULT_REASONING_END",
    "GRADER_METRICS",
    "GRADER_TIMEOUTS",
    "MATH_COUNTERS",
    "MATH_GRADERS",
    "MATH_PROMPT",
    "Benchmark",
    "Score",
    "answer_part",
    "check_math_grader",
    "get",
    "grader_verdicts",
    "item_id",
    "load_rows",
    "math_prompt",
    "n_items",
    "register",
    "resolve_benchmarks",
    "sample_fields",
    "score_math",
    "task_dataset",
]


def n_items(task: str, limit: int | None = None, truthfulqa_version: str = "2021") -> int:
    """How many items an evaluation of `task` scores: the full set, or `limit` if smaller."""
    return get(task).n_items(limit, truthfulqa_version=truthfulqa_version)


def resolve_benchmarks(spec: str) -> list[str]:
    """ "all" or a comma list of task names -> task names in the order given, duplicates dropped."""
    names = [part.strip() for part in (spec or "").split(",") if part.strip()]
    if not names:
        raise HarnessError(f"no benchmarks given; valid: all, {', '.join(BENCHMARKS)}")
    if "all" in names:
        return list(BENCHMARKS)
    return list(dict.fromkeys(get(name).name for name in names))


def load_rows(task: str, **metadata: Any) -> list[dict]:
    """A task's docs. Metadata knobs: truthfulqa_version ("2021"), gpqa_seed (0), and the scoring
    options every doc of a generative task carries (lm-eval hands process_results the doc only):
    reasoning_end ("</think>"), math_grader ("math-verify", math tasks). Others are ignored
    (lm-eval passes its whole metadata, model arguments included)."""
    return get(task).load_rows(**metadata)


def task_dataset(task: str, **metadata: Any):
    """lm-eval `custom_dataset` for a task: a DatasetDict with a "test" split."""
    return get(task).dataset_dict(**metadata)


def sample_fields(task: str, doc: dict, response: Any) -> dict[str, Any]:
    """item_id, gold and extracted answer for one per-sample record (`Benchmark.record_fields`).

    GPQA gives ids and letters only, never text."""
    return get(task).record_fields(doc, response)


def grader_verdicts(metrics: dict[str, Any]) -> dict[str, bool] | None:
    """{"math-verify": bool, "qwen": bool} from a math record's metrics when both graders ran."""
    if not all(name in metrics for name in GRADER_METRICS.values()):
        return None
    return {grader: bool(metrics[name]) for grader, name in GRADER_METRICS.items()}
