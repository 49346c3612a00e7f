"""Format drift and forgetting: does a trained model still answer the way the benchmark expects?

The risk measured is that a trained model stops answering in the benchmark's format (no final
answer; for the CGD study, critique-style verdict lines instead: `critique.py`, study code), and that
it loses ground on benchmarks outside its training domain. Everything here is per item, so each
change against base can be tested on matched items. Modules: `detectors` (is there a final answer),
`critique` (CGD study), `measures` (per-item measures and their levels), `changes` (tested changes,
forgetting), `prose` (the report's paragraphs).
"""

from harness.drift.changes import (
    DEFAULT_ALPHA,
    Change,
    changes_vs_base,
    compare_groups,
    forgetting,
    label_measures,
    measure_change,
    measure_changes,
    score_change,
    score_changes,
)
from harness.drift.critique import CRITIQUE_PATTERNS, is_critique
from harness.drift.detectors import NO_EXTRACTION, has_final_answer
from harness.drift.measures import (
    MEASURES,
    DriftRow,
    Measures,
    applicable_measures,
    format_drift,
    group_measures,
    ifeval_format_pass,
    is_generative,
    item_measures,
    response_length,
    unclosed_share,
)
from harness.drift.prose import describe_change, format_p, paragraph, paragraphs

__all__ = [
    "CRITIQUE_PATTERNS",
    "DEFAULT_ALPHA",
    "MEASURES",
    "NO_EXTRACTION",
    "Change",
    "DriftRow",
    "Measures",
    "applicable_measures",
    "changes_vs_base",
    "compare_groups",
    "describe_change",
    "forgetting",
    "format_drift",
    "format_p",
    "group_measures",
    "has_final_answer",
    "ifeval_format_pass",
    "is_critique",
    "is_generative",
    "item_measures",
    "label_measures",
    "measure_change",
    "measure_changes",
    "paragraph",
    "paragraphs",
    "response_length",
    "score_change",
    "score_changes",
    "unclosed_share",
]
