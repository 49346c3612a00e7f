"""IFEval verdicts from lm-eval's own instruction checkers, strict and loose.

The instruction semantics are lm-eval's (`lm_eval.tasks.ifeval.instructions_registry`); this module
only decides which text each checker sees, the way `lm_eval/tasks/ifeval/utils.py` does, so the
verdicts are the ones lm-eval's ifeval task reports.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import langdetect

from harness.errors import HarnessError
from harness.nltk_setup import ensure_punkt_tab

# instructions_util downloads punkt_tab at import time unless NLTK already finds it.
ensure_punkt_tab()

from lm_eval.tasks.ifeval.instructions import Instruction  # noqa: E402
from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT  # noqa: E402

# langdetect draws random samples and is unseeded by default, so a borderline response could
# pass `language:response_language` on one run and fail on the next; cached verdicts must not.
langdetect.DetectorFactory.seed = 0


@dataclass(frozen=True)
class IFEvalVerdict:
    prompt_level_strict: bool
    inst_level_strict: tuple[bool, ...]
    prompt_level_loose: bool
    inst_level_loose: tuple[bool, ...]


def loose_variants(response: str) -> tuple[str, ...]:
    """The 8 texts the IFEval paper's loose score tries: the response with markdown `*` removed
    or not, crossed with dropping its first line, its last line, both, or neither."""
    lines = response.split("\n")
    cut = [response] + ["\n".join(part).strip() for part in (lines[1:], lines[:-1], lines[1:-1])]
    return tuple(cut + [text.replace("*", "") for text in cut])


_RANDOM_LOCK = threading.Lock()


@contextmanager
def _seeded_random(key: str) -> Iterator[None]:
    """lm-eval fills a missing or invalid parameter with a draw from the global `random` (two
    IFEval prompts ask for the "letter" '#' and '!', which it replaces with a random letter).
    Seeding from the instruction makes that draw the same on every run; the caller's random
    state is put back afterwards."""
    with _RANDOM_LOCK:
        state = random.getstate()
        random.seed(key)  # a str seed is hashed with sha512: stable across processes
        try:
            yield
        finally:
            random.setstate(state)


def build_instruction(instruction_id: str, kwargs: Mapping | None, prompt: str) -> Instruction:
    """lm-eval's checker object for one instruction, built as lm-eval's ifeval task builds it.
    `get_instruction_args()` on the result gives the parameters actually used."""
    try:
        cls = INSTRUCTION_DICT[instruction_id]
    except KeyError:
        raise HarnessError(f"unknown IFEval instruction id {instruction_id!r}") from None
    # Rows from the Hub carry every kwarg name with null for the unused ones; lm-eval drops all
    # falsy values (not only None) before building, and so must we to give its verdicts.
    kwargs = {k: v for k, v in (kwargs or {}).items() if v}
    instruction = cls(instruction_id)
    try:
        with _seeded_random(instruction_id + json.dumps(kwargs, sort_keys=True, default=str)):
            instruction.build_description(**kwargs)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"IFEval instruction {instruction_id!r}: bad kwargs {kwargs!r}: {exc}") from None
    args = instruction.get_instruction_args()
    if args and "prompt" in args:
        instruction.build_description(prompt=prompt)
    return instruction


def _follows(instruction: Instruction, texts: Sequence[str]) -> bool:
    # A blank text never counts as following, even for checkers such as no_comma that it
    # would trivially satisfy.
    return any(text.strip() and instruction.check_following(text) for text in texts)


def check_ifeval(
    prompt: str,
    response: str,
    instruction_id_list: Sequence[str],
    kwargs: Sequence[Mapping | None],
) -> IFEvalVerdict:
    """Judge `response` on each instruction of one IFEval item (`kwargs[i]` parameterises
    `instruction_id_list[i]`). Strict checks the response as given; loose passes an instruction
    if any of `loose_variants(response)` does. A blank response follows nothing."""
    if not instruction_id_list:
        raise HarnessError("IFEval item has no instructions")
    if len(kwargs) != len(instruction_id_list):
        raise HarnessError(
            f"IFEval item has {len(instruction_id_list)} instructions but {len(kwargs)} kwargs"
        )
    response = response or ""
    variants = tuple(dict.fromkeys(loose_variants(response)))  # order kept, repeats checked once
    strict, loose = [], []
    for instruction_id, kw in zip(instruction_id_list, kwargs):
        # One instruction object serves both passes. The reference builds it anew for each, so a
        # letter it draws at random can differ between them and a prompt can pass strict yet
        # fail loose, the only way to the IFEval paper's GPT-4 loose scores (docs/parity.md).
        instruction = build_instruction(instruction_id, kw, prompt)
        strict.append(_follows(instruction, variants[:1]))
        loose.append(strict[-1] or _follows(instruction, variants[1:]))
    return IFEvalVerdict(
        prompt_level_strict=all(strict),
        inst_level_strict=tuple(strict),
        prompt_level_loose=all(loose),
        inst_level_loose=tuple(loose),
    )
