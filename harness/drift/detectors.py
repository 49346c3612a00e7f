"""Does a response give a final answer at all? The benchmark object says how to tell
(`answer_pattern`, `extraction_decides_parseable`: harness/benchmarks)."""

from __future__ import annotations

from harness.benchmarks import BENCHMARKS

# Tells "the record has no extraction field" apart from "the checker extracted nothing" (None).
NO_EXTRACTION = object()


def _answer_detector(task: str):
    """The pattern that finds a final answer in this task's responses; None: no answer format."""
    bench = BENCHMARKS.get(task)
    if bench is None or not bench.generative or bench.answer_pattern is None:
        return None
    return bench.answer_pattern.search


def has_final_answer(task: str, response: str | None, extracted: object = NO_EXTRACTION) -> bool | None:
    """Whether the answer can be scored at all; None when unknown or the task has no answer format.

    The checker's own extraction decides (the `extracted` field of each sample record), so
    "parseable" means here what it means to the score. HumanEval is the exception: its checker runs
    whatever text it gets as a program, so its extraction never says "no code"; a code block or a
    `def` does. Records written before `extracted` existed fall back to the same patterns.
    """
    detector = _answer_detector(task)
    if detector is None:
        return None
    bench = BENCHMARKS[task]
    if extracted is not NO_EXTRACTION and bench.extraction_decides_parseable:
        return extracted is not None and bool(str(extracted).strip())
    if response:
        return bool(detector(response))
    return False if response is not None else None
