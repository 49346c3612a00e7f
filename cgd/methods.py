"""The example builders: the ONLY place where training methods differ.

Every builder turns the teacher-annotated rows (question, solution, answer, attempt y', critique c,
refined answer ŷ) into TRL's conversational prompt-completion examples:
    {"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}
so the trainer puts the loss on the completion only. Adding an ablation is one function here.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cgd import prompts
from harness.errors import HarnessError

Builder = Callable[[list[dict], int], list[dict]]
METHODS: dict[str, Builder] = {}

# What each method reads from an annotated row; the build checks these before building.
NEEDS: dict[str, tuple[str, ...]] = {}


def method(name: str, needs: tuple[str, ...]):
    def register(fn: Builder) -> Builder:
        METHODS[name] = fn
        NEEDS[name] = ("question",) + needs
        return fn

    return register


def example(user: str, assistant: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": assistant}],
    }


def refine_example(row: dict, critique: str) -> dict:
    return example(prompts.refine_request(row["question"], row["attempt"], critique), row["refined"])


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (Sattolo's algorithm: one random n-cycle)."""
    if n < 2:
        raise HarnessError(f"cgd-shuffled needs at least 2 problems to swap critiques, got {n}")
    perm = list(range(n))
    rng = random.Random(seed)
    for i in range(n - 1, 0, -1):
        j = rng.randrange(i)  # j < i, never i itself: that is what rules out fixed points
        perm[i], perm[j] = perm[j], perm[i]
    return perm


@method("sft", needs=("solution",))
def sft(rows: list[dict], seed: int) -> list[dict]:
    return [example(prompts.solve_request(r["question"]), r["solution"]) for r in rows]


@method("distill-sft", needs=("refined",))
def distill_sft(rows: list[dict], seed: int) -> list[dict]:
    return [example(prompts.solve_request(r["question"]), r["refined"]) for r in rows]


@method("cft", needs=("attempt", "critique"))
def cft(rows: list[dict], seed: int) -> list[dict]:
    return [example(prompts.critique_request(r["question"], r["attempt"]), r["critique"]) for r in rows]


@method("cgd", needs=("attempt", "critique", "refined"))
def cgd(rows: list[dict], seed: int) -> list[dict]:
    return [refine_example(r, r["critique"]) for r in rows]


@method("refine-nocritique", needs=("attempt", "refined"))
def refine_nocritique(rows: list[dict], seed: int) -> list[dict]:
    return [example(prompts.revise_request(r["question"], r["attempt"]), r["refined"]) for r in rows]


@method("cgd-shuffled", needs=("attempt", "critique", "refined"))
def cgd_shuffled(rows: list[dict], seed: int) -> list[dict]:
    donors = derangement(len(rows), seed)
    return [refine_example(r, rows[d]["critique"]) for r, d in zip(rows, donors)]


@method("cgd-generic", needs=("attempt", "refined"))
def cgd_generic(rows: list[dict], seed: int) -> list[dict]:
    return [refine_example(r, prompts.GENERIC_CRITIQUE) for r in rows]


def check_methods(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise HarnessError(f"unknown method {', '.join(unknown)}; valid methods: {', '.join(METHODS)}")
    if not names:
        raise HarnessError(f"no method given; valid methods: {', '.join(METHODS)}")
    return names


def parse_methods(text: str) -> list[str]:
    return check_methods([m.strip() for m in text.split(",") if m.strip()])


def uses_teacher(name: str) -> bool:
    return any(col in NEEDS[name] for col in ("critique", "refined"))


def build_examples(name: str, rows: list[dict], seed: int = 0) -> list[dict]:
    """The training examples of one method, in row order, each tagged with its row's id."""
    check_methods([name])
    for i, row in enumerate(rows):
        missing = [c for c in NEEDS[name] if row.get(c) is None]
        if missing:
            raise HarnessError(
                f"method {name} needs column(s) {', '.join(missing)}, missing in row {i} "
                f"(id {row.get('id', '?')})"
            )
    built = METHODS[name](rows, seed)
    return [{"id": row.get("id", str(i)), **ex} for i, (row, ex) in enumerate(zip(rows, built))]
