"""lm-eval hooks for truthfulqa_mc1; the prompt lives in harness.registry."""

from harness.registry import task_dataset
from harness.registry import truthfulqa_prompt as doc_to_text  # noqa: F401


def load(**metadata):
    return task_dataset("truthfulqa_mc1", **metadata)
