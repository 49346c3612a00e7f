"""Probe: the untrained student answers each training problem once, greedily (its attempt y').

The request is the same plain chat prompt the student sees at inference, so y' is the answer the
critique has to be about. Generation goes through the cached backend: a re-run regenerates nothing.
"""

from __future__ import annotations

from cgd import prompts
from harness.backends.base import GenRequest


def probe_request(question: str, max_new_tokens: int) -> GenRequest:
    return GenRequest(
        messages=({"role": "user", "content": prompts.solve_request(question)},),
        max_new_tokens=max_new_tokens,
        temperature=0.0,
    )


def probe(problems: list[dict], student, max_new_tokens: int = 512) -> list[dict]:
    """One attempt row per problem: {id, attempt, prompt_tokens, completion_tokens, finish_reason}."""
    results = student.generate([probe_request(p["question"], max_new_tokens) for p in problems])
    return [
        {
            "id": p["id"],
            "attempt": r.text,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "finish_reason": r.finish_reason,
        }
        for p, r in zip(problems, results)
    ]
