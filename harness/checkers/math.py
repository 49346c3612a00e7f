"""Math answer checker (AMC23, MATH-500, AIME24, training verdicts) on top of math-verify.

Scoring rules, in order:
1. The gold is normalised (`normalize_gold`) and parsed as LaTeX wrapped in `$...$`: math-verify
   only extracts LaTeX that sits in a math environment (a gold with its own `\\boxed{}` is read
   from its boxes instead). No parse -> status `unparsable_gold`.
2. The prediction is the content of the response's last complete `\\boxed{}`; without one it is
   whatever math-verify's own extraction finds ("final answer is ...", "answer: ...", else the
   last number or formula). Nothing found, or an empty box -> status `no_answer`. When the gold
   lists several answers (`1, 2`), the boxes just before the last one that math-verify would
   join to it count too (`\\boxed{1} and \\boxed{2}`; see `extract_boxed_run`).
3. `verify(gold, pred)`, gold first: math-verify is deliberately asymmetric.

What math-verify decides, pinned by tests/cases/math.jsonl: `50\\%` matches `50` and `0.5`
either way round, but a bare `50` never matches `0.5`; units, `^\\circ`, `\\text{}` and `\\$`
are dropped; floats are compared to 6 decimal places, so `0.333333` counts as `\\frac{1}{3}`.

math-verify bounds its own work with `signal.alarm`, which only works in a main thread and cannot
stop C code that never returns to the interpreter. So this module runs it with its own timers
off, under one `setitimer` deadline per item, and `check_many` scores in separate worker
processes that are killed when they overrun. `check_math` scores in-process only when that is
safe (main thread, a small input without explosive arithmetic); otherwise it too uses a worker.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import FiniteSet

from harness.checkers.math_common import (  # noqa: F401  (re-exported: the checker's public names)
    NO_ANSWER,
    OK,
    PRED_MAX_CHARS,
    STATUSES,
    TIMEOUT,
    UNPARSABLE_GOLD,
    MathVerdict,
    extract_boxed,
    extract_boxed_run,
    normalize_gold,
)
from harness.checkers.workers import run_in_workers

# math-verify logs every timeout together with the whole input (megabytes for runaway
# generations); timeouts reach callers as a verdict status instead.
logging.getLogger("math_verify").setLevel(logging.ERROR)

# Default configs only: math-verify caches its compiled regexes per config with maxsize=1, so
# alternating two different configs would recompile them on every call.
_LATEX_ONLY = (LatexExtractionConfig(),)
_LATEX_OR_EXPR = (LatexExtractionConfig(), ExprExtractionConfig())

# Batches this small are not worth starting processes for, when every item is tame.
_IN_PROCESS_BATCH = 16


# A plain number followed only by words, e.g. "5 dollars": math-verify strips a fixed list of
# units but would read "dollars" as the product d*o*l*l*a*r*s.
_NUMBER_WITH_UNIT_WORDS = re.compile(r"(-?\\?\$?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z]{3,}(?:\s+[A-Za-z]{2,})*\.?")


def _clean_boxed(content: str) -> str:
    """Spellings math-verify misreads: `5 dollars` (a product of letters), `30°` (unparsed)."""
    content = content.replace("°", "^\\circ")
    match = _NUMBER_WITH_UNIT_WORDS.fullmatch(content)
    return match.group(1) if match else content


# ---------------------------------------------------------------- scoring


def _parse_gold(gold_text: str) -> list:
    if _BOX_COMMAND.search(gold_text):
        # A gold that marks its own answer (a worked solution, `\\boxed{1} and \\boxed{2}`) is read
        # the way math-verify reads any text: from its boxes. Wrapped in `$...$`, math-verify
        # would join every box in it, however far apart.
        return parse(gold_text, _LATEX_OR_EXPR, parsing_timeout=None)
    # Inline `$...$` cannot span lines (matrices are often written over several).
    one_line = gold_text.replace("\n", " ")
    return parse(f"${one_line}$", _LATEX_OR_EXPR, parsing_timeout=None)


_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _lists_several(gold_parsed: list) -> bool:
    """Whether the gold is a list of answers (`1, 2`; `(1, 2), (2, 1)`; `x = 1, y = 2`)."""
    return isinstance(gold_parsed[0], FiniteSet) and len(gold_parsed[0]) > 1


def _extract_prediction(response: str, several: bool) -> tuple[str | None, list, bool]:
    """(the answer text as extracted, math-verify's parse of it, whether it is the boxed answer).

    With `several`, the boxes joined to the last one (`extract_boxed_run`) form the answer, as
    math-verify joins them; otherwise the last box alone is the answer, so that a second box
    close after the first (a correction, a restatement) does not turn one answer into two.
    """
    answer = _boxed_answer(extract_boxed_run(response), several)
    if answer is not None:
        if not answer:
            return None, [], True
        latex = ", ".join(_clean_boxed(box) for box in answer)
        parsed = parse(f"\\boxed{{{latex}}}", _LATEX_ONLY, parsing_timeout=None)
        return ", ".join(answer), parsed, True
    parsed = parse(response, _LATEX_OR_EXPR, parsing_timeout=None)
    if not parsed:
        return None, [], False
    as_text = [p for p in parsed if isinstance(p, str)]
    return (as_text[-1] if as_text else str(parsed[0])), parsed, False


def _boxed_answer(boxes: list[str], several: bool) -> list[str] | None:
    """The boxes that make up the answer; None without a box, [] when the last box is empty."""
    if not boxes:
        return None
    if not boxes[-1]:
        return []
    return [box for box in boxes if box] if several else boxes[-1:]


def boxed_answer(gold: Any, response: str | None) -> str | None:
    """The boxed answer `check_math` scores, as text (the `extracted` of sample records).

    None without a box, "" for an empty last box.
    """
    boxes = extract_boxed_run(response or "")
    several = False
    if len(boxes) > 1:
        gold_parsed = _gold_parsed(gold)
        several = bool(gold_parsed) and _lists_several(gold_parsed)
    answer = _boxed_answer(boxes, several)
    return None if answer is None else ", ".join(answer)


def _gold_parsed(gold: Any) -> list:
    """math-verify's parse of the gold; [] for no gold answer at all."""
    try:
        return _parse_gold(normalize_gold(gold))
    except ValueError:
        return []


def _score(gold: Any, response: str | None) -> MathVerdict:
    gold_parsed = _gold_parsed(gold)
    if not gold_parsed:
        return MathVerdict(False, UNPARSABLE_GOLD, None)
    pred_text, pred_parsed, boxed = _extract_prediction(response or "", _lists_several(gold_parsed))
    if pred_text is None:
        return MathVerdict(False, NO_ANSWER, None)
    # allow_set_relation_comp: `0 < x \le 1` answers the gold `(0, 1]` as well as the interval does.
    correct = bool(pred_parsed) and verify(
        gold_parsed, pred_parsed, allow_set_relation_comp=True, timeout_seconds=None
    )
    return MathVerdict(correct, OK, pred_text[:PRED_MAX_CHARS], boxed)


class _DeadlineExceeded(BaseException):
    """A BaseException, so the `except Exception` blocks in math-verify and sympy let it through."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _DeadlineExceeded in the main thread after `seconds`; restores the caller's timer."""

    def expire(signum: int, frame: Any) -> None:
        raise _DeadlineExceeded

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_timer, _ = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer:
            left = previous_timer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


DEFAULT_GRADER = "math-verify"
GRADERS = (DEFAULT_GRADER, "qwen")


def _scorer(grader: str):
    if grader == DEFAULT_GRADER:
        return _score
    if grader == "qwen":
        # Imported here: math_qwen builds on this module.
        from harness.checkers.math_qwen import score_qwen

        return score_qwen
    raise ValueError(f"unknown math grader {grader!r}; valid: {', '.join(GRADERS)}")


def _score_with_deadline(
    gold: Any, response: str | None, timeout_s: float, grader: str = DEFAULT_GRADER
) -> MathVerdict:
    score = _scorer(grader)
    try:
        with _deadline(timeout_s):
            return score(gold, response)
    except _DeadlineExceeded:
        return MathVerdict(False, TIMEOUT, None)


# Arithmetic that may explode (towers, big factorials and powers): scored out of process.
_EXPLOSIVE = re.compile(
    r"\^\s*\{[^}]*\^|\^\s*\w+\s*\^|\*\*\s*\w+\s*\*\*|\*\*\s*\([^)]*\*\*"  # towers
    r"|\d{4,}\s*!|[)}]\s*!"  # factorials of big numbers or of expressions
    r"|\^\s*\{?\s*\d{7,}|\d{200}"  # huge exponents and numbers
)


def _is_tame(gold: Any, response: str | None) -> bool:
    """Small input whose parsed part (the last box, else the whole text) has no explosive maths."""
    text = response or ""
    if len(text) > 20_000 or len(str(gold)) > 1_000 or _max_nesting(text) > 50:
        return False
    if text.count("\\boxed") + text.count("\\fbox") > 20:
        return False
    # The boxes joined to the last one may be parsed too, when the gold lists several answers.
    boxes = extract_boxed_run(text)
    parsed_part = "\n".join(boxes) if boxes else text
    return _EXPLOSIVE.search(parsed_part) is None and _EXPLOSIVE.search(str(gold)) is None


def _max_nesting(text: str) -> int:
    depth = deepest = 0
    for brace in re.findall(r"[{}]", text):
        depth = depth + 1 if brace == "{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _can_time_out_here() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def check_math(
    gold: Any, response: str | None, timeout_s: float = 5.0, grader: str = DEFAULT_GRADER
) -> MathVerdict:
    """Score one response against one gold answer within about timeout_s.

    `grader`: "math-verify" (this module's rules) or "qwen" (`math_qwen`: Qwen2.5-Math's
    `math_equal`). Inputs unsafe to score here also pay for starting a worker process (about a
    second), so score batches, and anything off the main thread, with check_many.
    """
    _scorer(grader)
    if _can_time_out_here() and _is_tame(gold, response):
        return _score_with_deadline(gold, response, timeout_s, grader)
    return _score_in_workers([(gold, response)], timeout_s, workers=1, grader=grader)[0]


def check_many(
    items: Sequence[tuple[Any, str | None]],
    timeout_s: float = 5.0,
    workers: int | None = None,
    grader: str = DEFAULT_GRADER,
) -> list[MathVerdict]:
    """Score (gold, response) pairs in killable worker processes; verdicts in input order.

    No item takes much longer than timeout_s: a worker still busy after timeout_s plus a small
    margin is killed and replaced, and its item gets status `timeout`.
    """
    _scorer(grader)
    items = list(items)
    if not items:
        return []
    small = len(items) <= _IN_PROCESS_BATCH
    if small and _can_time_out_here() and all(_is_tame(g, r) for g, r in items):
        return [_score_with_deadline(g, r, timeout_s, grader) for g, r in items]
    return _score_in_workers(items, timeout_s, workers, grader)


# ---------------------------------------------------------------- worker processes


def _score_in_workers(
    items: list[tuple[Any, str | None]],
    timeout_s: float,
    workers: int | None,
    grader: str = DEFAULT_GRADER,
) -> list[MathVerdict]:
    results = run_in_workers(
        [(g, r, grader) for g, r in items],
        "harness.checkers.math:_worker_score",
        timeout_s,
        workers,
        warmup=("1", "\\boxed{1}", grader, timeout_s),
    )
    return [MathVerdict(*r) if r is not None else MathVerdict(False, TIMEOUT, None) for r in results]


def _worker_score(gold: Any, response: str | None, grader: str, timeout_s: float) -> tuple:
    """In a worker: the verdict as plain data."""
    verdict = _score_with_deadline(gold, response, timeout_s, grader)
    return verdict.correct, verdict.status, verdict.pred, verdict.boxed
