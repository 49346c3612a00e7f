"""The part of a reasoning model's response that answers: the text after its thinking.

Reasoning models write `<think> ... </think>` before the answer, and the thinking is full of
candidate answers, boxes and code that must not be scored. Every generative checker's input
goes through `split_answer`, so the rule lives here only:
- with the end marker (the last one, if the model wrote several), the text after it is scored;
- with an opening marker but no end marker after it, the model never finished thinking: there
  is no answer (callers count it apart as `no_answer`, not as a wrong answer);
- with neither, the whole response is the answer (a model that does not think).
A response that ends its thinking without having opened it in the text (chat templates that
put the opening marker in the prompt, as DeepSeek-R1's does) counts as closed.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_THINKING = "none"
CLOSED = "closed"
UNCLOSED = "unclosed"

DEFAULT_END_MARKER = "</think>"


@dataclass(frozen=True)
class AnswerPart:
    text: str | None  # None: the thinking never ended, so there is nothing to score
    thinking: str  # NO_THINKING | CLOSED | UNCLOSED: the per-record field drift reports


def opening_marker(end_marker: str) -> str | None:
    """`</think>` -> `<think>`; None for a marker that is not an XML-style closing tag."""
    if end_marker.startswith("</") and len(end_marker) > 3:
        return "<" + end_marker[2:]
    return None


def split_answer(response: str | None, end_marker: str | None = DEFAULT_END_MARKER) -> AnswerPart:
    """The text to score and how the response's thinking ended. An empty marker turns this off."""
    text = response or ""
    if not end_marker:
        return AnswerPart(text, NO_THINKING)
    end = text.rfind(end_marker)
    opener = opening_marker(end_marker)
    opened = text.rfind(opener) if opener else -1
    if end >= 0 and end > opened:
        return AnswerPart(text[end + len(end_marker) :], CLOSED)
    if opened >= 0:
        return AnswerPart(None, UNCLOSED)
    return AnswerPart(text, NO_THINKING)
