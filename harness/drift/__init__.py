"""Format drift and forgetting: does a trained model still answer the way the benchmark expects?

The risk measured is that a trained model stops answering in the benchmark's format (no final
answer, a trait a study adds with `add_measure`, or a benchmark's own measure, its `drift_extras`),
and that it loses ground on benchmarks outside its training domain. Everything here is per item, so
each change against base can be tested on matched items. Modules: `detectors` (is there a final
answer), `measures` (per-item measures, the ones a study or a benchmark adds, their levels),
`changes` (tested changes, forgetting), `prose` (the report's paragraphs).
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
from harness.drift.detectors import NO_EXTRACTION, has_final_answer
from harness.drift.measures import (
    DriftRow,
    Measures,
    ResponseMeasure,
    add_measure,
    added_measures,
    applicable_measures,
    benchmark_extras,
    format_drift,
    group_measures,
    is_generative,
    item_measures,
    measure_names,
    response_length,
    rise_is_better,
    unclosed_share,
)
from harness.drift.prose import describe_change, format_p, paragraph, paragraphs

__all__ = [
    "DEFAULT_ALPHA",
    "NO_EXTRACTION",
    "Change",
    "DriftRow",
    "Measures",
    "ResponseMeasure",
    "add_measure",
    "added_measures",
    "applicable_measures",
    "benchmark_extras",
    "changes_vs_base",
    "compare_groups",
    "describe_change",
    "forgetting",
    "format_drift",
    "format_p",
    "group_measures",
    "has_final_answer",
    "is_generative",
    "item_measures",
    "label_measures",
    "measure_change",
    "measure_changes",
    "measure_names",
    "paragraph",
    "paragraphs",
    "response_length",
    "rise_is_better",
    "score_change",
    "score_changes",
    "unclosed_share",
]
