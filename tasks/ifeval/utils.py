"""lm-eval hooks for ifeval; scoring lives in harness.registry."""

from harness.registry import instruction_level_mean as agg_inst_level_acc  # noqa: F401
from harness.registry import score_ifeval, task_dataset


def load(**metadata):
    return task_dataset("ifeval", **metadata)


def process_results(doc, results):
    return score_ifeval(doc, results[0])
