"""lm-eval hooks for truthfulqa_mc1; the prompt lives in harness.benchmarks."""

from harness.benchmarks import task_dataset
from harness.benchmarks import truthfulqa_prompt as doc_to_text  # noqa: F401


def load(**metadata):
    return task_dataset("truthfulqa_mc1", **metadata)
