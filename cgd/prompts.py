"""Every instruction text of the training side, in one place and versioned.

SOLVE is the math benchmarks' prompt (harness/registry.py MATH_PROMPT), read from there.

Bump PROMPTS_VERSION whenever a word below changes: the version is recorded in every dataset's
metadata and is part of the build stages' inputs, so old datasets are never silently mixed with new
ones. tests/unit/test_methods.py pins a fingerprint of these texts to the version, so an edit without a
bump fails the tests.
"""

from __future__ import annotations

import hashlib

from harness.registry import MATH_PROMPT

PROMPTS_VERSION = "cgd-prompts-v3"

VERDICT_RIGHT = "Conclusion: right"
VERDICT_WRONG = "Conclusion: wrong"

# What the student sees at inference, and so what the probe asks (y' is the student's inference-time
# answer) and what sft / distill-sft train on: the math benchmarks' own prompt, the one text both read.
SOLVE = MATH_PROMPT

# The teacher's critique request; cft trains the student to answer it.
CRITIQUE = (
    "Here is a math problem and a student's attempt to solve it. Review the attempt: check every "
    "calculation and every logical step, name each mistake or missing step, and say whether the "
    'final answer is correct. Finish with one line that reads exactly "' + VERDICT_RIGHT + '" '
    'if the final answer is correct, or "' + VERDICT_WRONG + '" if it is not.\n\n'
    "Problem:\n{problem}\n\n"
    "Student's attempt:\n{attempt}"
)

# The teacher's refine request; cgd trains the student to answer it (the critique is input only).
REFINE = (
    "Here is a math problem, a student's attempt to solve it, and a review of that attempt. "
    "Taking the review into account, write a complete and correct solution of the problem. "
    "Reason step by step, and give the final answer in \\boxed{{}}.\n\n"
    "Problem:\n{problem}\n\n"
    "Student's attempt:\n{attempt}\n\n"
    "Review:\n{critique}"
)

# Ablation refine-nocritique: the same request with the review left out.
REVISE = (
    "Here is a math problem and a student's attempt to solve it. Write a complete and correct "
    "solution of the problem. Reason step by step, and give the final answer in \\boxed{{}}.\n\n"
    "Problem:\n{problem}\n\n"
    "Student's attempt:\n{attempt}"
)

# Ablation cgd-generic: one review that says nothing about the problem at hand.
GENERIC_CRITIQUE = (
    "The attempt may contain mistakes. Go through it again step by step, correct any error you "
    "find, and make sure the final answer is right and given in \\boxed{}."
)

# Phrases of the offline reference teacher's critiques. They are training text for cft and input
# text for cgd, so they are versioned like the instructions.
REF_ANSWER_MATCHES = "The final answer ${pred}$ agrees with the expected answer ${gold}$."
REF_ANSWER_DIFFERS = (
    "The final answer is wrong: the attempt concludes ${pred}$, but the expected answer is ${gold}$."
)
REF_ANSWER_MISSING = (
    "The attempt never states a final answer in \\boxed{{}}; the expected answer is ${gold}$."
)
REF_MISSED_STEPS = "A correct solution needs these steps, which the attempt does not contain:"
REF_NO_MISSED_STEPS_WRONG = (
    "The attempt contains the key quantities of a correct solution, so the mistake lies in how "
    "they are combined; recheck the last computations."
)
REF_NO_MISSED_STEPS_RIGHT = "The reasoning covers the key steps of a correct solution."
REF_OUTLINE = "A correct solution starts like this:"
REF_FINAL_ANSWER = "The final answer is $\\boxed{{{gold}}}$."
# Phrases of reveal=none / answer critiques (cgd/teachers/reference.py), which explain without
# handing over ŷ. None of them holds a number: the leakage check reads numbers as statements.
REF_ANSWER_CORRECT = "The final answer is correct."
REF_ANSWER_WRONG = (
    "The final answer is wrong: the attempt concludes ${pred}$, which does not solve the problem."
)
REF_ANSWER_WRONG_UNQUOTED = "The final answer is wrong."
REF_ANSWER_ABSENT = "The attempt never states a final answer in \\boxed{{}}."
REF_GOES_ASTRAY = (
    'The attempt leaves the path of a correct solution at "{line}": a correct solution never reaches '
    "{numbers}."
)
REF_MISSING_IDEA = (
    "What the attempt lacks is this step of a correct solution, in outline with its results left out: {hint}"
)
REF_SKIPPED_IDEA = (
    "The reasoning skips a step that a complete solution shows, in outline with its results left out: {hint}"
)
REF_OUTLINE_HIDDEN = "A correct solution starts like this, with its results left out: {hint}"
# What a withheld result reads as inside an outline.
REF_HIDDEN = "?"


def solve_request(problem: str) -> str:
    return SOLVE.format(problem=problem.strip())


def critique_request(problem: str, attempt: str) -> str:
    return CRITIQUE.format(problem=problem, attempt=attempt)


def refine_request(problem: str, attempt: str, critique: str) -> str:
    return REFINE.format(problem=problem, attempt=attempt, critique=critique)


def revise_request(problem: str, attempt: str) -> str:
    return REVISE.format(problem=problem, attempt=attempt)


def verdict_line(correct: bool) -> str:
    return VERDICT_RIGHT if correct else VERDICT_WRONG


def parse_verdict(critique: str) -> bool | None:
    """The verdict of a critique: its last line naming one, or None when it never gives one."""
    for line in reversed(critique.strip().splitlines()):
        text = line.strip().strip("*").strip().rstrip(".").lower()
        if text == VERDICT_RIGHT.lower():
            return True
        if text == VERDICT_WRONG.lower():
            return False
    return None


def templates_fingerprint() -> str:
    """Hash of every text above; tests pin it to PROMPTS_VERSION."""
    texts = [
        value
        for name, value in sorted(globals().items())
        if name.isupper() and isinstance(value, str) and name != "PROMPTS_VERSION"
    ]
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
