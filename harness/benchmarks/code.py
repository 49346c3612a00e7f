"""HumanEval, chat style: the model writes the whole function; harness.checkers.code extracts it and
runs the upstream tests in its sandbox (lm-eval's own code_eval metric is not used)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.benchmarks.base import Benchmark, Row, Score, answer_part, flag

# Generous against the lm-eval default of 3 s: the tests may run on a loaded 2-core machine,
# and a slow-but-correct solution should not count as a failure.
CODE_TIMEOUT_S = 10.0


def humaneval_prompt(doc: dict) -> str:
    return (
        "Complete the following Python function. Reply with the whole function, including "
        "its signature, in one ```python code block.\n\n"
        f"```python\n{doc['prompt']}```\n"
    )


@dataclass(frozen=True)
class HumanEval(Benchmark):
    output_type: str = "generate_until"
    metric: str = "pass@1"
    dataset: str = "humaneval"
    general: bool = True
    chat: bool = True
    max_new_tokens: int = 512
    counters: tuple[str, ...] = ("timeout", "no_answer")
    size: int = 164

    def contamination_texts(self, row: Row) -> list[str]:
        return [row["prompt"], row.get("canonical_solution") or ""]

    answer_pattern: ClassVar[re.Pattern] = re.compile(r"```|^\s*def\s+\w+\s*\(", re.MULTILINE)
    # The checker runs whatever text it gets as a program: its extraction never says "no code".
    extraction_decides_parseable: ClassVar[bool] = False
    about: ClassVar[str] = (
        "Chat-style HumanEval: the model writes the whole function; harness.checkers.code extracts it\n"
        "and runs the upstream tests in its sandbox (so lm-eval's own code_eval metric is not used)."
    )

    def prompt(self, doc: Row) -> str:
        return humaneval_prompt(doc)

    def extract(self, doc: Row, text: str) -> str:
        from harness.checkers.code import extract_code

        return extract_code(text, doc["prompt"], doc["entry_point"])

    def score(self, doc: Row, response: str | None) -> Score:
        from harness.checkers.code import check_humaneval

        text = answer_part(doc, response).text
        if text is None:
            return Score({"pass@1": 0.0, "timeout": 0.0, "no_answer": 1.0})
        program = self.extract(doc, text)
        verdict = check_humaneval(
            doc["prompt"], program, doc["test"], doc["entry_point"], timeout_s=CODE_TIMEOUT_S
        )
        value = {
            "pass@1": flag(verdict.passed),
            "timeout": flag(verdict.status == "timeout"),
            "no_answer": 0.0,
        }
        return Score(value, program)

    def target_field(self) -> Any:
        return "task_id"

    def task_config(self) -> dict[str, Any]:
        return {**super().task_config(), "unsafe_code": True}


HUMANEVAL = HumanEval("humaneval")
