"""The offline teacher: critiques and refinements written from the dataset's reference solution.

It needs no model. The verdict comes from the math checker (attempt vs gold); the critique names
where the final answer differs and quotes the reference steps whose key numbers the attempt never
mentions; the refined answer is the reference solution, made to end in \\boxed{gold}.
Everything is a pure function of (problem, attempt): the same input gives the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cgd import prompts
from cgd.teachers.base import Written

MAX_MISSED_STEPS = 3
MAX_STEP_CHARS = 300
MAX_ANSWER_CHARS = 200
# 0 and 1 appear in almost any text, so they say nothing about whether a step was taken.
TRIVIAL_NUMBERS = frozenset({"0", "1"})
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
# A single line break in MATH solutions usually sits mid-sentence (before a display); a blank line does not.
SENTENCE_END = re.compile(r"[.!?](?=\s)|\n\s*\n")
# Displayed environments span lines; a sentence never ends inside one.
MATH_SPANS = re.compile(
    r"\\begin\{([a-z]+\*?)\}.*?\\end\{\1\}|\$\$.*?\$\$|\$.*?\$|\\\[.*?\\\]|\\\(.*?\\\)", re.S
)
# Figure code: its coordinates are not steps of the argument, and quoting it helps nobody.
ASY_FIGURE = re.compile(r"\[asy\].*?\[/asy\]", re.S)
MAX_OUTLINE_STEPS = 2


class ReferenceTeacher:
    spec = "reference"

    def describe(self) -> dict:
        return {"teacher": self.spec, "fingerprint": f"reference:{prompts.PROMPTS_VERSION}", "sampling": None}

    def critique(self, items: Sequence[dict]) -> list[Written]:
        from harness.checkers.math import check_many

        # One batch: check_many reuses its scoring processes, check_math per item may spawn one each.
        verdicts = check_many([(it["answer"], it["attempt"]) for it in items])
        return [
            Written(critique_text(it["question"], it["solution"], it["answer"], it["attempt"], v), None)
            for it, v in zip(items, verdicts)
        ]

    def refine(self, items: Sequence[dict], critiques: Sequence[str]) -> list[Written]:
        return [Written(reference_refinement(it["solution"], it["answer"]), None) for it in items]


def reference_critique(question: str, solution: str, gold: str, attempt: str) -> str:
    from harness.checkers.math import check_math

    return critique_text(question, solution, gold, attempt, check_math(gold, attempt))


def critique_text(question: str, solution: str, gold: str, attempt: str, verdict) -> str:
    """The critique, given the math checker's verdict on (gold, attempt)."""
    lines = [answer_sentence(verdict, gold)]
    missed = missed_steps(solution, attempt, question)
    if missed:
        lines.append(prompts.REF_MISSED_STEPS)
        lines += [f"- {step}" for step in missed]
    elif verdict.correct:
        lines.append(prompts.REF_NO_MISSED_STEPS_RIGHT)
    elif has_key_steps(solution, question):
        lines.append(prompts.REF_NO_MISSED_STEPS_WRONG)
    else:
        # Nothing countable to compare (e.g. a multiple-choice or symbolic answer): show how a
        # correct solution begins instead.
        lines.append(prompts.REF_OUTLINE)
        lines += [f"- {shorten(step, MAX_STEP_CHARS)}" for step in split_steps(solution)[:MAX_OUTLINE_STEPS]]
    lines.append(prompts.verdict_line(verdict.correct))
    return "\n".join(lines)


def answer_sentence(verdict, gold: str) -> str:
    pred = shorten(verdict.pred, MAX_ANSWER_CHARS)
    if verdict.correct:
        return prompts.REF_ANSWER_MATCHES.format(pred=pred or gold, gold=gold)
    if not pred:
        return prompts.REF_ANSWER_MISSING.format(gold=gold)
    return prompts.REF_ANSWER_DIFFERS.format(pred=pred, gold=gold)


def shorten(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit].rstrip() + " ..."


def reference_refinement(solution: str, gold: str) -> str:
    text = solution.strip()
    if ends_with_boxed(text, gold):
        return text
    return f"{text}\n\n{prompts.REF_FINAL_ANSWER.format(gold=gold)}"


def ends_with_boxed(text: str, gold: str) -> bool:
    """True when the last \\boxed{} holds the gold answer and only punctuation follows it."""
    at = text.rfind("\\boxed{")
    if at < 0:
        return False
    close = matching_brace(text, at + len("\\boxed"))
    return (
        close is not None
        and text[at + len("\\boxed{") : close].strip() == gold.strip()
        and not re.search(r"\w", text[close + 1 :])
    )


def matching_brace(text: str, open_at: int) -> int | None:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def split_steps(solution: str) -> list[str]:
    """Sentences of a worked solution (figures left out), never cut inside a math span."""
    solution = ASY_FIGURE.sub(" ", solution)
    spans = [m.span() for m in MATH_SPANS.finditer(solution)]
    steps, start = [], 0
    for m in SENTENCE_END.finditer(solution):
        if not any(a <= m.start() < b for a, b in spans):
            steps.append(solution[start : m.end()])
            start = m.end()
    steps.append(solution[start:])
    return [s.strip() for s in steps if s.strip()]


def key_numbers(text: str) -> set[str]:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    return {n.rstrip("0").rstrip(".") if "." in n else n for n in NUMBER.findall(text)} - TRIVIAL_NUMBERS


def has_key_steps(solution: str, question: str) -> bool:
    given = key_numbers(question)
    return any(key_numbers(step) - given for step in split_steps(solution))


def missed_steps(solution: str, attempt: str, question: str = "") -> list[str]:
    """Reference steps most of whose key numbers never appear in the attempt, in solution order.

    Numbers of the question are not key: copying them proves nothing, and a step that only
    restates the givens is not one the attempt can miss.
    """
    seen, given = key_numbers(attempt), key_numbers(question)
    missed = []
    for step in split_steps(solution):
        keys = key_numbers(step) - given
        if keys and len(keys - seen) * 2 > len(keys):
            missed.append(shorten(step, MAX_STEP_CHARS))
        if len(missed) == MAX_MISSED_STEPS:
            break
    return missed
