"""The one rule for what a reasoning model's response answers (harness.checkers.reasoning)."""

from __future__ import annotations

import pytest

from harness.checkers.reasoning import opening_marker, split_answer


@pytest.mark.parametrize(
    "response, text, thinking",
    [
        ("plain answer 5", "plain answer 5", "none"),
        ("<think>try 3</think> so 5", " so 5", "closed"),
        ("<think>a</think>b<think>c</think>d", "d", "closed"),
        ("try 3</think>5", "5", "closed"),  # the template opened the thinking in the prompt
        ("<think>try 3, then 4", None, "unclosed"),
        ("<think>a</think>b<think>c", None, "unclosed"),
        ("", "", "none"),
        (None, "", "none"),
    ],
)
def test_split_answer(response, text, thinking):
    part = split_answer(response)
    assert (part.text, part.thinking) == (text, thinking)


def test_other_markers_and_off():
    assert split_answer("<reasoning>x</reasoning>y", "</reasoning>").text == "y"
    assert split_answer("x[END]y", "[END]").text == "y"
    assert split_answer("<think>x", "").text == "<think>x"
    assert opening_marker("</think>") == "<think>" and opening_marker("[END]") is None
