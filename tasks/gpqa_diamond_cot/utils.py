"""lm-eval hooks for gpqa_diamond_cot; prompts and scoring live in harness.registry."""

from harness.registry import gpqa_cot_prompt as doc_to_text  # noqa: F401
from harness.registry import score_gpqa_cot, task_dataset


def load(**metadata):
    return task_dataset("gpqa_diamond_cot", **metadata)


def process_results(doc, results):
    return score_gpqa_cot(doc, results[0])
