"""lm-eval hooks for gpqa_diamond; prompts and data live in harness.registry."""

from harness.registry import gpqa_mc_prompt as doc_to_text  # noqa: F401
from harness.registry import gpqa_target as doc_to_target  # noqa: F401
from harness.registry import task_dataset


def load(**metadata):
    return task_dataset("gpqa_diamond", **metadata)
