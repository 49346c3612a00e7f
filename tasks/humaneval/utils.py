"""lm-eval hooks for humaneval; prompts and scoring live in harness.registry."""

from harness.registry import humaneval_prompt as doc_to_text  # noqa: F401
from harness.registry import score_humaneval, task_dataset


def load(**metadata):
    return task_dataset("humaneval", **metadata)


def process_results(doc, results):
    return score_humaneval(doc, results[0])
