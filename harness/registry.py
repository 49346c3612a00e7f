"""What spans the registered benchmarks: resolving an `eval.benchmarks` spec, the graders' verdicts
of a math record, and the names the evaluator, the config, the probe and the analysis import.

Each benchmark is one object in harness/benchmarks (metadata, data, prompt, extraction, scoring,
drift hooks, lm-eval task); ask it directly (`get(task).load_rows()`, `.n_items(limit)`,
`.record_fields(doc, response, score)`).
"""

from __future__ import annotations

from typing import Any

from harness.benchmarks import BENCHMARKS, get, item_id
from harness.benchmarks.math import (
    DEFAULT_MATH_GRADER,
    GRADER_METRICS,
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
    "MATH_GRADERS",
    "MATH_PROMPT",
    "check_math_grader",
    "get",
    "grader_verdicts",
    "item_id",
    "math_prompt",
    "resolve_benchmarks",
    "score_math",
]


def resolve_benchmarks(spec: str) -> list[str]:
    """ "all" or a comma list of task names -> task names in the order given, duplicates dropped."""
    names = [part.strip() for part in (spec or "").split(",") if part.strip()]
    if not names:
        raise HarnessError(f"no benchmarks given; valid: all, {', '.join(BENCHMARKS)}")
    if "all" in names:
        return list(BENCHMARKS)
    return list(dict.fromkeys(get(name).name for name in names))


def grader_verdicts(metrics: dict[str, Any]) -> dict[str, bool] | None:
    """{"math-verify": bool, "qwen": bool} from a math record's metrics when both graders ran."""
    if not all(name in metrics for name in GRADER_METRICS.values()):
        return None
    return {grader: bool(metrics[name]) for grader, name in GRADER_METRICS.items()}
