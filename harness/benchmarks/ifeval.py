"""IFEval with lm-eval's four metric names and aggregations; the prompt is given verbatim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.benchmarks.base import Benchmark, DriftExtra, Hook, Row, Score, answer_part, metric

# Instructions about the answer's form, not its content: the drift analysis follows them apart.
IFEVAL_FORMAT_PREFIXES = ("detectable_format:", "startend:", "change_case:", "punctuation:")


def instruction_level_mean(items: Sequence[Sequence[bool]]) -> float:
    """Accuracy over all instructions pooled, not averaged per prompt (IFEval's inst-level)."""
    flat = [bool(x) for per_prompt in items for x in per_prompt]
    return sum(flat) / len(flat) if flat else 0.0


def ifeval_format_pass(record: dict) -> float | None:
    """Pass rate of the record's format instructions (None when it has none, or no per-item verdicts)."""
    ids = record.get("instruction_id_list") or (record.get("doc") or {}).get("instruction_id_list")
    verdicts = (record.get("metrics") or {}).get("inst_level_strict_acc")
    if not isinstance(ids, list) or not isinstance(verdicts, list) or len(ids) != len(verdicts):
        return None
    chosen = [float(v) for i, v in zip(ids, verdicts) if str(i).startswith(IFEVAL_FORMAT_PREFIXES)]
    return float(np.mean(chosen)) if chosen else None


# IFEval's own drift measure: the share of format instructions a response follows.
IFEVAL_FORMAT = DriftExtra("ifeval_format", "IFEval format instructions", "IFEval format")


@dataclass(frozen=True)
class IFEval(Benchmark):
    def contamination_texts(self, row: Row) -> list[str]:
        return [row["prompt"]]

    output_type: str = "generate_until"
    metric: str = "prompt_level_strict_acc"
    dataset: str = "ifeval"
    general: bool = True
    chat: bool = True
    # lm-eval's 1280: some prompts ask for 1,000+ words, and a cut-off answer would fail them spuriously.
    max_new_tokens: int = 1280
    counters: tuple[str, ...] = ("no_answer",)
    size: int = 541
    extra_metrics: tuple[str, ...] = ("inst_level_strict_acc",)

    drift_extras: ClassVar[tuple[DriftExtra, ...]] = (IFEVAL_FORMAT,)
    about: ClassVar[str] = (
        "IFEval with lm-eval's four metric names and aggregations; the prompt is given verbatim."
    )

    def score(self, doc: Row, response: str | None) -> Score:
        from harness.checkers.ifeval import check_ifeval

        text = answer_part(doc, response).text
        if text is None:
            n = len(doc["instruction_id_list"])
            return Score(
                {
                    "prompt_level_strict_acc": False,
                    "inst_level_strict_acc": [False] * n,
                    "prompt_level_loose_acc": False,
                    "inst_level_loose_acc": [False] * n,
                    "no_answer": 1.0,
                }
            )
        # Arrow gives every kwargs dict the union of all keys, None where unused.
        kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in doc["kwargs"]]
        verdict = check_ifeval(doc["prompt"], text, list(doc["instruction_id_list"]), kwargs)
        return Score(
            {
                "prompt_level_strict_acc": bool(verdict.prompt_level_strict),
                "inst_level_strict_acc": [bool(x) for x in verdict.inst_level_strict],
                "prompt_level_loose_acc": bool(verdict.prompt_level_loose),
                "inst_level_loose_acc": [bool(x) for x in verdict.inst_level_loose],
                "no_answer": 0.0,
            }
        )

    def record_fields(self, doc: Row, response: Any, score: Score | None = None) -> dict[str, Any]:
        # The drift analysis splits IFEval's per-instruction verdicts into format and content ones.
        return {
            **super().record_fields(doc, response, score),
            "instruction_id_list": list(doc["instruction_id_list"]),
        }

    def drift_measures(self, record: dict) -> dict[str, float]:
        value = ifeval_format_pass(record)
        return {} if value is None else {IFEVAL_FORMAT.name: value}

    def task_config(self) -> dict[str, Any]:
        config = super().task_config()
        config["doc_to_text"] = "prompt"
        config["doc_to_target"] = 0
        per_instruction = Hook("agg_inst_level_acc")
        config["metric_list"] = [
            metric("prompt_level_strict_acc"),
            metric("inst_level_strict_acc", aggregation=per_instruction),
            metric("prompt_level_loose_acc"),
            metric("inst_level_loose_acc", aggregation=per_instruction),
            metric("no_answer", higher_is_better=False),
        ]
        return config


IFEVAL = IFEval("ifeval")
