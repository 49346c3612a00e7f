"""What both math graders share: verdict statuses, `MathVerdict`, the boxed-answer extraction and
the gold normalisation. Its own module so that `math` (math-verify) and `math_qwen` (Qwen2.5-Math)
both build on it without importing each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OK = "ok"
NO_ANSWER = "no_answer"
UNPARSABLE_GOLD = "unparsable_gold"
TIMEOUT = "timeout"
STATUSES = (OK, NO_ANSWER, UNPARSABLE_GOLD, TIMEOUT)
# A runaway "answer" must not bloat a verdict (critique prompts quote it, workers pipe it back).
PRED_MAX_CHARS = 1000


@dataclass(frozen=True)
class MathVerdict:
    correct: bool
    status: str
    pred: str | None = None  # the answer the grader read, cut to its first PRED_MAX_CHARS
    # math-verify: `pred` is the response's boxed answer (the last box and the boxes joined to it),
    # not its fallback reading of an unboxed text. Always False from the Qwen grader.
    boxed: bool = False


# ---------------------------------------------------------------- extraction


# `\\` is a line break and `\{` `\}` are literal braces: neither opens nor closes a group.
_BRACE_TOKEN = re.compile(r"\\\\|\\[{}]|\\(?:boxed|fbox)(?![A-Za-z])\s*(\{)?|[{}]")
_BARE_BOX_ARGUMENT = re.compile(r"\s*([^\s${}]+)")
_SINGLE_BOX = re.compile(r"\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*", re.DOTALL)


def extract_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` / `\\fbox{...}` / `\\boxed 5`, else None.

    One linear pass, so responses with megabytes or thousands of boxes stay cheap. An unclosed
    box (a generation cut off mid-answer) is skipped in favour of the last complete one.
    """
    boxes = extract_boxed_run(text)
    return boxes[-1] if boxes else None


# math-verify (latex2sympy2_extended's `extract_boxed_content`, mode "last") reads the boxes just
# before the last one as part of the same answer when little separates them: fewer than 10
# characters, or fewer than 70 with an "and", "or", comma or semicolon in between (and not the
# same content again). `\boxed{1}, \boxed{2}` is one answer; `\boxed{3} ... I mean \boxed{4}`
# with a long gap is not.
_JOIN_ANY_GAP = 10
_JOIN_SEPARATED_GAP = 70
_JOIN_SEPARATOR = re.compile(r"\b(?:and|or)\b|[,;]")


def extract_boxed_run(text: str) -> list[str]:
    """The last complete box and the boxes joined to it, in text order ([] without a box).

    Same single pass as `extract_boxed`. Only top-level boxes count: a box inside another one
    is part of that one's content.
    """
    run: list[tuple[int, int, str]] = []  # (box command start, end after its close, content)
    # Per open group: (content start, box command start) for a box group, None for a plain one.
    open_groups: list[tuple[int, int] | None] = []
    open_boxes = 0
    for match in _BRACE_TOKEN.finditer(text):
        token = match.group(0)
        if token.startswith("\\\\") or token in ("\\{", "\\}"):
            continue
        if token == "{":
            open_groups.append(None)
        elif token == "}":
            box = open_groups.pop() if open_groups else None
            if box is not None:
                open_boxes -= 1
                if not open_boxes:
                    _extend_run(run, text, box[1], match.end(), text[box[0] : match.start()])
        elif match.group(1):
            open_groups.append((match.end(), match.start()))
            open_boxes += 1
        elif not open_boxes:
            bare = _BARE_BOX_ARGUMENT.match(text, match.end())
            if bare:
                _extend_run(run, text, match.start(), bare.end(), bare.group(1).rstrip(".,"))
    return [_unwrap_nested_box(content.strip()) for _, _, content in run]


def _extend_run(run: list[tuple[int, int, str]], text: str, start: int, end: int, content: str) -> None:
    if run:
        gap_start = run[-1][1]
        same = run[-1][2].strip() == content.strip()
        joined = start - gap_start < _JOIN_ANY_GAP or (
            not same
            and start - gap_start < _JOIN_SEPARATED_GAP
            and _JOIN_SEPARATOR.search(text, gap_start, start)
        )
        if not joined:
            run.clear()
        elif same:
            # math-verify keeps one copy of a box repeated back to back.
            run[-1] = (run[-1][0], end, content)
            return
    run.append((start, end, content))


def _unwrap_nested_box(content: str) -> str:
    while (inner := _SINGLE_BOX.fullmatch(content)) and _is_balanced(inner.group(1)):
        content = inner.group(1).strip()
    return content


def _is_balanced(text: str) -> bool:
    depth = 0
    for token in re.findall(r"\\\\|\\[{}]|[{}]", text):
        if token in ("{", "}"):
            depth += 1 if token == "{" else -1
            if depth < 0:
                return False
    return depth == 0


_PADDED_INTEGER = re.compile(r"[+-]?\d+(?:\.0+)?")


def normalize_gold(gold: Any) -> str:
    """The gold answer as LaTeX text: AMC float `27.0` -> `27`, AIME `"025"` -> `25`.

    Any other string is returned stripped but otherwise unchanged.
    """
    if isinstance(gold, bool) or gold is None:
        raise ValueError(f"not a gold answer: {gold!r}")
    if isinstance(gold, int):
        return str(gold)
    if isinstance(gold, float):
        if gold != gold or gold in (float("inf"), float("-inf")):
            raise ValueError(f"not a gold answer: {gold!r}")
        return str(int(gold)) if gold.is_integer() else repr(gold)
    text = str(gold).strip()
    if _PADDED_INTEGER.fullmatch(text):
        return str(int(float(text))) if "." in text else str(int(text))
    return text
