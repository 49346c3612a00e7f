"""The offline teacher: critiques and refinements written from the dataset's reference solution.

It needs no model. The verdict comes from the math checker (attempt vs gold); the refined answer is
the reference solution, made to end in \\boxed{gold}. What the critique may give away is the option
`reveal` (the teacher_options key):
- `none` (default): it explains without handing over ŷ or its final value: the verdict, the first
  line where the attempt leaves the path of a correct solution, and the first reference step the
  attempt never reaches, in outline with its results replaced by "?". A last pass drops any line
  the leakage check (cgd/teachers/leakage.py) reads as stating the gold answer.
- `answer`: the same, but it also states the expected final answer.
- `steps`: the first version's critique: the expected answer plus up to three reference steps
  quoted verbatim, so CGD's target is largely in its input (measured in docs/training.md).
Everything is a pure function of (problem, attempt, reveal): the same input gives the same text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from cgd import prompts
from cgd.teachers.base import Written
from harness.errors import HarnessError

REVEALS = ("none", "answer", "steps")
DEFAULT_REVEAL = REVEALS[0]
MAX_MISSED_STEPS = 3
MAX_STEP_CHARS = 300
MAX_ANSWER_CHARS = 200
MAX_QUOTE_CHARS = 160
# An outline names the idea of a step; its full text would be ŷ verbatim (6-gram coverage).
MAX_HINT_CHARS = 110
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
BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def check_reveal(reveal: str) -> str:
    if reveal not in REVEALS:
        raise HarnessError(f"reference teacher: reveal={reveal!r} is not one of {', '.join(REVEALS)}")
    return reveal


class ReferenceTeacher:
    spec = "reference"

    def __init__(self, reveal: str = DEFAULT_REVEAL):
        self.reveal = check_reveal(reveal)
        self.failures = Counter()  # only empty attempts can fail: the reference always has a text

    def describe(self) -> dict:
        return {
            "teacher": self.spec,
            "fingerprint": f"reference:{prompts.PROMPTS_VERSION}:reveal={self.reveal}",
            "sampling": None,
            "reveal": self.reveal,
            "failures": dict(self.failures),
        }

    def critique(self, items: Sequence[dict]) -> list[Written]:
        from harness.checkers.math import check_many

        # One batch: check_many reuses its scoring processes, check_math per item may spawn one each.
        verdicts = check_many([(it["answer"], it["attempt"]) for it in items])
        texts = critique_texts(items, verdicts, self.reveal)
        return [Written(text, None) for text in texts]

    def refine(self, items: Sequence[dict], critiques: Sequence[str]) -> list[Written]:
        return [Written(reference_refinement(it["solution"], it["answer"]), None) for it in items]


def reference_critique(
    question: str, solution: str, gold: str, attempt: str, reveal: str = DEFAULT_REVEAL
) -> str:
    from harness.checkers.math import check_math

    item = {"question": question, "solution": solution, "answer": gold, "attempt": attempt}
    return critique_texts([item], [check_math(gold, attempt)], reveal)[0]


def critique_texts(items: Sequence[dict], verdicts: Sequence, reveal: str = DEFAULT_REVEAL) -> list[str]:
    """The critiques of a batch, given the math checker's verdicts on (gold, attempt)."""
    check_reveal(reveal)
    if reveal == "steps":
        return [
            critique_text(it["question"], it["solution"], it["answer"], it["attempt"], v)
            for it, v in zip(items, verdicts)
        ]
    drafts = [
        explained_lines(it["question"], it["solution"], it["answer"], it["attempt"], v, reveal)
        for it, v in zip(items, verdicts)
    ]
    if reveal == "none":
        drafts = withhold_answer(drafts, [it["answer"] for it in items])
    return ["\n".join(line for line, _ in lines) for lines in drafts]


def critique_text(question: str, solution: str, gold: str, attempt: str, verdict) -> str:
    """The reveal=steps critique (the first version's): expected answer and quoted reference steps."""
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
    return {canonical_number(n) for n in NUMBER.findall(text)} - TRIVIAL_NUMBERS


def line_numbers(text: str) -> list[str]:
    """key_numbers in the order they appear."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return [n for n in map(canonical_number, NUMBER.findall(text)) if n not in TRIVIAL_NUMBERS]


def canonical_number(n: str) -> str:
    return n.rstrip("0").rstrip(".") if "." in n else n


def has_key_steps(solution: str, question: str) -> bool:
    given = key_numbers(question)
    return any(key_numbers(step) - given for step in split_steps(solution))


def missed_steps(solution: str, attempt: str, question: str = "") -> list[str]:
    """Reference steps most of whose key numbers never appear in the attempt, in solution order.

    Numbers of the question are not key: copying them proves nothing, and a step that only
    restates the givens is not one the attempt can miss.
    """
    return [shorten(step, MAX_STEP_CHARS) for step in missed_raw(solution, attempt, question)]


def missed_raw(solution: str, attempt: str, question: str = "") -> list[str]:
    seen, given = key_numbers(attempt), key_numbers(question)
    missed = []
    for step in split_steps(solution):
        keys = key_numbers(step) - given
        if keys and len(keys - seen) * 2 > len(keys):
            missed.append(step)
        if len(missed) == MAX_MISSED_STEPS:
            break
    return missed


# ------------------------------------------------------------------ reveal = none | answer


Line = tuple[str, "str | None"]  # (text, what replaces it if it states the gold; None: drop it)


def explained_lines(
    question: str, solution: str, gold: str, attempt: str, verdict, reveal: str
) -> list[Line]:
    """A critique that explains the verdict without quoting ŷ: verdict, where it goes astray, what is missing."""
    if reveal == "answer":
        lines: list[Line] = [(answer_sentence(verdict, gold), None)]
    else:
        lines = [hidden_answer_sentence(verdict)]
    if not verdict.correct:
        astray = astray_line(attempt, solution, question)
        if astray:
            lines.append((astray, None))
    missed = missed_raw(solution, attempt, question)
    if missed:
        template = prompts.REF_SKIPPED_IDEA if verdict.correct else prompts.REF_MISSING_IDEA
        lines.append((template.format(hint=outline(missed[0], question, gold)), None))
    elif verdict.correct:
        lines.append((prompts.REF_NO_MISSED_STEPS_RIGHT, None))
    elif has_key_steps(solution, question):
        lines.append((prompts.REF_NO_MISSED_STEPS_WRONG, None))
    else:
        steps = split_steps(solution)
        # The last sentence of a solution is where it states the answer: never outline that one.
        if len(steps) > 1:
            lines.append((prompts.REF_OUTLINE_HIDDEN.format(hint=outline(steps[0], question, gold)), None))
    lines.append((prompts.verdict_line(verdict.correct), None))
    return lines


def hidden_answer_sentence(verdict) -> Line:
    if verdict.correct:
        return prompts.REF_ANSWER_CORRECT, None
    pred = shorten(verdict.pred, MAX_ANSWER_CHARS)
    if not pred:
        return prompts.REF_ANSWER_ABSENT, None
    # A wrong answer that still contains the gold (`5 or 7` for 5) loses its quote, not the verdict.
    return prompts.REF_ANSWER_WRONG.format(pred=pred), prompts.REF_ANSWER_WRONG_UNQUOTED


def astray_line(attempt: str, solution: str, question: str) -> str | None:
    """The attempt's first line reaching a quantity that neither the problem nor its reference solution has."""
    known = key_numbers(solution) | key_numbers(question)
    for line in attempt.splitlines():
        stray = [n for n in dict.fromkeys(line_numbers(line)) if n not in known]
        if stray:
            numbers = ", ".join(f"${n}$" for n in stray[:3])
            return prompts.REF_GOES_ASTRAY.format(
                line=shorten(line.strip(), MAX_QUOTE_CHARS), numbers=numbers
            )
    return None


def outline(step: str, question: str, gold: str) -> str:
    """A reference step with its results withheld: every number it derives, and any span holding a
    box or the gold itself, reads REF_HIDDEN; the wording and the operations stay."""
    given = key_numbers(question)
    hidden = key_numbers(step) - given
    if NUMBER.fullmatch(gold.strip()):
        hidden |= {canonical_number(gold.strip())}
    gold_text = re.sub(r"\s+", "", gold)

    def span(m: re.Match) -> str:
        text = m.group(0)
        if BOX.search(text) or (len(gold_text) > 1 and gold_text in re.sub(r"\s+", "", text)):
            return f"${prompts.REF_HIDDEN}$"
        return text

    text = MATH_SPANS.sub(span, ASY_FIGURE.sub(" ", step))
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # as key_numbers reads 1,000
    text = NUMBER.sub(
        lambda m: prompts.REF_HIDDEN if canonical_number(m.group(0)) in hidden else m.group(0), text
    )
    return clip(" ".join(text.split()), MAX_HINT_CHARS)


def clip(text: str, limit: int) -> str:
    """At most about `limit` characters, cut between words and never inside a math span."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    for m in MATH_SPANS.finditer(text):
        if m.start() < cut < m.end():
            cut = m.start()
    cut = cut if cut > 0 else limit
    return text[:cut].rstrip(" ,;:") + " ..."


def withhold_answer(drafts: list[list[Line]], golds: list[str]) -> list[list[Line]]:
    """Replace or drop every line the leakage check reads as stating its critique's gold answer."""
    from cgd.teachers.leakage import states_answer_many

    flat = [(i, j) for i, lines in enumerate(drafts) for j in range(len(lines))]
    stated = states_answer_many([(golds[i], drafts[i][j][0]) for i, j in flat])
    out = [list(lines) for lines in drafts]
    for (i, j), leaks in zip(flat, stated):
        if leaks:
            out[i][j] = (drafts[i][j][1], None) if drafts[i][j][1] is not None else None
    return [[line for line in lines if line is not None] for lines in out]
