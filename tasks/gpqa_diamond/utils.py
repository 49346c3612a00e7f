"""lm-eval hooks for gpqa_diamond; prompts and data live in harness.benchmarks."""

from harness.benchmarks import gpqa_mc_prompt as doc_to_text  # noqa: F401
from harness.benchmarks import gpqa_target as doc_to_target  # noqa: F401
from harness.benchmarks import task_dataset


def load(**metadata):
    return task_dataset("gpqa_diamond", **metadata)
