"""Math benchmarks (AMC23, AIME24, MATH-500): a chat prompt asking for a `\\boxed{}` answer, scored
by harness.checkers.math (math-verify) or its Qwen2.5-Math grader (`eval.math_grader`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.benchmarks.base import Benchmark, Row, Score, answer_part, flag
from harness.errors import HarnessError

MATH_TIMEOUT_S = 5.0
MATH_COUNTERS = ("timeout", "no_answer", "unparsable_gold")
# eval.math_grader: which grader's verdict is a math task's `exact_match`. With "both", math-verify's
# is, and each grader's verdict is also a metric of its own (GRADER_METRICS).
MATH_GRADERS = ("math-verify", "qwen", "both")
DEFAULT_MATH_GRADER = MATH_GRADERS[0]
GRADER_METRICS = {"math-verify": "math_verify_exact_match", "qwen": "qwen_exact_match"}
GRADER_TIMEOUTS = {"math-verify": "math_verify_timeout", "qwen": "qwen_timeout"}

# The math benchmarks' prompt, and also the training probe's (cgd/prompts.py SOLVE): in CGD the attempt
# y' is the student's inference-time answer, so the probe must ask exactly as the benchmarks do.
# Changing a word here moves every math score and the CI baseline, and needs a PROMPTS_VERSION bump.
MATH_PROMPT = "{problem}\n\nSolve this step by step, then write the final answer inside \\boxed{{}}."


def math_prompt(doc: dict) -> str:
    return MATH_PROMPT.format(problem=doc["problem"].strip())


def check_math_grader(name: str) -> str:
    if name not in MATH_GRADERS:
        raise HarnessError(f"unknown eval.math_grader {name!r}; valid: {', '.join(MATH_GRADERS)}")
    return name


@dataclass(frozen=True)
class MathBenchmark(Benchmark):
    output_type: str = "generate_until"
    metric: str = "exact_match"
    dataset: str = ""  # "": the benchmark's name
    general: bool = False
    chat: bool = True
    counters: tuple[str, ...] = MATH_COUNTERS

    answer_pattern: ClassVar[re.Pattern] = re.compile(r"\\(?:boxed|fbox)\s*\{\s*[^\s}]")
    about: ClassVar[str] = (
        "Generative math task: the model answers in \\boxed{}; harness.checkers.math decides equivalence."
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            object.__setattr__(self, "dataset", self.name)

    def doc_options(self, metadata: dict[str, Any]) -> dict[str, Any]:
        grader = check_math_grader(str(metadata.get("math_grader", DEFAULT_MATH_GRADER)))
        return {**super().doc_options(metadata), "math_grader": grader}

    def prompt(self, doc: Row) -> str:
        return math_prompt(doc)

    def gold(self, doc: Row) -> Any:
        return doc["gold"]

    def extract(self, doc: Row, text: str) -> str | None:
        """The answer the headline grader reads: Qwen's own extraction, else the boxed answer."""
        if doc.get("math_grader") == "qwen":
            from harness.checkers.math_qwen import extract_qwen_answer

            return extract_qwen_answer(text) or None
        from harness.checkers.math import boxed_answer

        return boxed_answer(doc["gold"], text)

    def score(self, doc: Row, response: str | None) -> Score:
        text = answer_part(doc, response).text
        scores, headline = self._grade(doc, text)
        return Score(scores, None if text is None else self._answer(doc, text, headline))

    def _answer(self, doc: Row, text: str, verdict: Any) -> str | None:
        """The records' answer: the headline grader's own reading of `text` where it is what
        `extract` gives (tests/unit/test_benchmark_math_answer.py pins where), else `extract`.

        They differ where the grader read nothing or something else: a timeout, an unparsable gold,
        an empty box ("" here, no reading there), math-verify's reading of an unboxed text (None
        here), Qwen's answer that normalises to nothing, and a reading cut to PRED_MAX_CHARS."""
        from harness.checkers.math import OK, PRED_MAX_CHARS

        usable = verdict.status == OK and verdict.pred is not None and len(verdict.pred) < PRED_MAX_CHARS
        if usable and (verdict.boxed or doc.get("math_grader") == "qwen"):
            return verdict.pred
        return self.extract(doc, text)

    def metrics(self, doc: Row, text: str | None) -> dict[str, float]:
        """The graders' verdicts on the answer part `text` (None: no answer part)."""
        return self._grade(doc, text)[0]

    def _grade(self, doc: Row, text: str | None) -> tuple[dict[str, float], Any]:
        """(the metrics, the headline grader's MathVerdict)."""
        from harness.checkers.math import NO_ANSWER, MathVerdict, check_math

        choice = doc.get("math_grader") or DEFAULT_MATH_GRADER
        graders = tuple(GRADER_METRICS) if choice == "both" else (choice,)
        verdicts = {
            grader: (
                MathVerdict(False, NO_ANSWER)
                if text is None
                else check_math(doc["gold"], text, timeout_s=MATH_TIMEOUT_S, grader=grader)
            )
            for grader in graders
        }
        headline = verdicts[graders[0]]
        scores = {"exact_match": flag(headline.correct)}
        scores.update({status: flag(headline.status == status) for status in MATH_COUNTERS})
        if len(graders) > 1:
            for grader, verdict in verdicts.items():
                scores[GRADER_METRICS[grader]] = flag(verdict.correct)
                scores[GRADER_TIMEOUTS[grader]] = flag(verdict.status == "timeout")
        return scores, headline

    def metric_list(self) -> list[dict[str, Any]]:
        both = [*GRADER_METRICS.values(), *GRADER_TIMEOUTS.values()]
        return super().metric_list() + [
            {"metric": m, "aggregation": "mean", "higher_is_better": m in GRADER_METRICS.values()}
            for m in both
        ]


def score_math(doc: dict, response: str) -> dict[str, float]:
    """A math response's metrics (the probe and checkpoint selection score with it too)."""
    return _SCORER.metrics(doc, answer_part(doc, response).text)


# Token budgets are CPU-sane defaults (the evaluator may override them): MATH-500 gets 512,
# competition problems get 1024 because their reasoning runs long.
AMC23 = MathBenchmark("amc23", max_new_tokens=1024, size=40)
AIME24 = MathBenchmark("aime24", max_new_tokens=1024, size=30)
MATH500 = MathBenchmark("math500", max_new_tokens=512, size=500)
_SCORER = MathBenchmark("math")
