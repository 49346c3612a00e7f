"""lm-eval hooks for truthfulqa_mc2; prompt and scoring live in harness.registry."""

from harness.registry import task_dataset
from harness.registry import truthfulqa_mc2 as process_results  # noqa: F401
from harness.registry import truthfulqa_prompt as doc_to_text  # noqa: F401


def load(**metadata):
    return task_dataset("truthfulqa_mc2", **metadata)
