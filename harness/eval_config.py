"""The `eval:` section of a run's config (`EvalConfig`): everything that decides an evaluation's
numbers. Apart from the evaluator so that reading a config never imports lm-eval."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.backends.base import QUANTIZE_MODES
from harness.backends.vllm import VllmOptions
from harness.config import section, setting
from harness.paths import tasks_dir
from harness.registry import (
    BENCHMARKS,
    DEFAULT_MATH_GRADER,
    DEFAULT_REASONING_END,
    MATH_GRADERS,
    check_math_grader,
)


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers (the `eval:` section); recorded in every results file."""

    benchmarks: list[str] = setting(
        ["all"], "benchmark names (harness/registry.py), or all; resolved to names in registry order"
    )
    limit: int | None = setting(None, "items per benchmark (the first N); null: the full sets", minimum=1)
    seed: int = setting(0, "seed of lm-eval's samplers: the run's first seed", key=False)
    max_new_tokens: int | None = setting(
        None, "caps every generative task's answer length; null: each benchmark's own budget", minimum=1
    )
    bootstrap_iters: int = setting(1000, "lm-eval's bootstrap for the stderr of non-mean metrics", minimum=0)
    truthfulqa_version: str = setting(
        "2021",
        "TruthfulQA release: 2021 (817 q, published numbers) or 2025 (790 q)",
        choices=("2021", "2025"),
    )
    gpqa_seed: int = setting(0, "seed of GPQA's answer-option shuffle")
    math_grader: str = setting(
        DEFAULT_MATH_GRADER,
        "math-verify | qwen (Qwen2.5-Math's math_equal) | both: every math record carries both verdicts; "
        "the headline is math-verify's unless qwen alone",
        choices=MATH_GRADERS,
    )
    reasoning_end: str = setting(
        DEFAULT_REASONING_END,
        "generative checkers score the text after the last one; an opened, never-closed thinking is "
        'no_answer; "" scores the whole response',
    )
    vllm: VllmOptions = section(
        VllmOptions, "the engine of `backend: vllm`; the hf and openai backends ignore it"
    )
    quantize: str = setting(
        "none",
        "backend hf only: none | bf16 | int8 matmuls in the continuous engine (faster, changes the numbers; "
        "docs/performance.md)",
        choices=("none", *QUANTIZE_MODES),
    )

    def __post_init__(self) -> None:
        from harness.registry import resolve_benchmarks

        self.benchmarks = resolve_benchmarks(",".join(self.benchmarks))
        check_math_grader(self.math_grader)
        if isinstance(self.vllm, dict):  # read back from a results file
            self.vllm = VllmOptions(**self.vllm)

    def identity(self, backend: str) -> dict[str, Any]:
        """What decides the numbers: the engine options only where that engine runs (and `quantize`
        only when set, so runs from before it existed keep their stage keys)."""
        out = asdict(self)
        if backend != "vllm":
            out.pop("vllm")
        if backend != "hf" or self.quantize == "none":
            out.pop("quantize")
        return out

    def backend_options(self, backend: str) -> dict[str, Any]:
        """The keyword options this section gives the backend it evaluates with."""
        if backend == "vllm":
            return asdict(self.vllm)
        if backend == "hf" and self.quantize != "none":
            return {"quantize": self.quantize}
        return {}

    def metadata(self) -> dict[str, Any]:
        return {
            "truthfulqa_version": self.truthfulqa_version,
            "gpqa_seed": self.gpqa_seed,
            "math_grader": self.math_grader,
            "reasoning_end": self.reasoning_end,
        }

    def task_order(self) -> list[str]:
        """Chat tasks first: lm-eval's chat templating is one switch per call (see evaluate_model)."""
        return [t for chat in (True, False) for t in self.benchmarks if BENCHMARKS[t].chat == chat]


def task_manager(cfg: EvalConfig):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=cfg.metadata())
