"""lm-eval hooks for gpqa_diamond_cot; prompts and scoring live in harness.benchmarks."""

from harness.benchmarks import gpqa_cot_prompt as doc_to_text  # noqa: F401
from harness.benchmarks import score_gpqa_cot, task_dataset


def load(**metadata):
    return task_dataset("gpqa_diamond_cot", **metadata)


def process_results(doc, results):
    return score_gpqa_cot(doc, results[0])
