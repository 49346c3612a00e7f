"""lm-eval hooks for amc23; prompts and scoring live in harness.registry."""

from harness.registry import math_prompt as doc_to_text  # noqa: F401
from harness.registry import score_math, task_dataset


def load(**metadata):
    return task_dataset("amc23", **metadata)


def process_results(doc, results):
    return score_math(doc, results[0])
