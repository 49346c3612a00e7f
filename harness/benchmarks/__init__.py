"""Every benchmark as one object (`Benchmark`), registered in "all"'s order.

Adding a benchmark: build its object (a family's class in math.py, choice.py, code.py, ifeval.py,
or a new subclass of `Benchmark`) and `register` it; `python -m harness.benchmarks.tasks` then
writes its lm-eval task (tasks/<name>/<name>.yaml). See docs/architecture.md.
"""

from harness.benchmarks.base import BENCHMARKS, Benchmark, DriftExtra, Score, get, item_id, register
from harness.benchmarks.choice import GPQA_DIAMOND, GPQA_DIAMOND_COT, TRUTHFULQA_MC1, TRUTHFULQA_MC2
from harness.benchmarks.code import HUMANEVAL
from harness.benchmarks.ifeval import IFEVAL
from harness.benchmarks.math import AIME24, AMC23, MATH500, MathBenchmark

for _bench in (
    AMC23,
    AIME24,
    MATH500,
    HUMANEVAL,
    GPQA_DIAMOND,
    GPQA_DIAMOND_COT,
    IFEVAL,
    TRUTHFULQA_MC1,
    TRUTHFULQA_MC2,
):
    register(_bench)

__all__ = ["BENCHMARKS", "Benchmark", "DriftExtra", "MathBenchmark", "Score", "get", "item_id", "register"]
