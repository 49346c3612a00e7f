"""Log-likelihoods on the lean forward pass: packed (no padding) and each shared context run once.

Multiple-choice tasks (TruthfulQA, GPQA) score several continuations of one long context; padded
batches recompute that context for every choice. Here requests are grouped by their context, the
context goes through the model once into a KV slot, and every continuation attends to it.

`token_stats` runs the same forward and keeps, per continuation token, its log-probability and the
entropy of the whole next-token distribution there (the uncertainty analysis, cgd/uncertainty.py):
a sum of log-probabilities cannot give an entropy, and the distribution is already computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from cpu_engine.llama_fast import FastForward
from cpu_engine.slots import KVSlots


def sum_and_greedy(logprobs: torch.Tensor, target: torch.Tensor) -> tuple[float, bool]:
    """What lm-eval asks of a continuation: its summed log-probability, and whether greedy yields it."""
    total = logprobs.gather(-1, target[:, None]).sum().item()
    return total, bool((logprobs.argmax(-1) == target).all().item())


def per_token(logprobs: torch.Tensor, target: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per continuation token: log p(token), and the entropy (nats) of the next-token distribution."""
    chosen = logprobs.gather(-1, target[:, None]).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    return chosen.tolist(), entropy.tolist()


def loglikelihoods(
    fwd: FastForward,
    requests: Sequence[tuple[list[int], list[int]]],
    budget: int = 4096,
    slots: int = 64,
    progress: Callable[[int], None] | None = None,
    reduce: Callable[[torch.Tensor, torch.Tensor], Any] = sum_and_greedy,
) -> list[Any]:
    """`reduce(logprobs, target)` per request, by default (sum of log p(continuation | context), whether
    greedy decoding yields the continuation); `per_token` gives token_stats' lists instead. Each request is
    (tokens, continuation): the context and continuation together, already cut to the model's positions
    plus one (harness.backends.base.loglikelihood_tokens), the continuation its last tokens."""
    groups: dict[tuple[int, ...], list[tuple[int, list[int], list[int]]]] = {}
    for i, (ids, cont) in enumerate(requests):
        inputs = list(ids[:-1])  # the last token predicts nothing
        cut = len(inputs) - len(cont) + 1  # the prefix ends with the token that predicts cont[0]
        groups.setdefault(tuple(inputs[:cut]), []).append((i, inputs[cut:], list(cont)))
    results: list[Any] = [None] * len(requests)
    order = sorted(groups, key=len, reverse=True)
    while order:
        chunk, tokens = [], 0
        while order and len(chunk) < slots and (not chunk or tokens + _cost(order[-1], groups) <= budget):
            chunk.append(order.pop())
            tokens += _cost(chunk[-1], groups)
        _score_chunk(fwd, chunk, groups, results, reduce)
        if progress:
            progress(sum(len(groups[p]) for p in chunk))
    return results


def _cost(prefix: tuple[int, ...], groups) -> int:
    return len(prefix) + sum(len(rest) for _, rest, _ in groups[prefix])


def _score_chunk(fwd: FastForward, chunk: list[tuple[int, ...]], groups, results, reduce) -> None:
    longest = max(len(p) + max(len(rest) for _, rest, _ in groups[p]) for p in chunk)
    cache = KVSlots(fwd, len(chunk), longest + 1)
    first = fwd.prefill([list(p) for p in chunk], list(range(len(chunk))), cache)
    parts = [(slot, p, m) for slot, p in enumerate(chunk) for m in groups[p] if m[1]]
    later = iter(())
    if parts:
        logits = fwd.extend(
            [m[1] for _, _, m in parts],
            [s for s, _, _ in parts],
            [len(p) for _, p, _ in parts],
            cache,
            [len(m[1]) for _, _, m in parts],
        )
        later = iter(torch.split(logits, [len(m[1]) for _, _, m in parts]))
    rest_logits = {m[0]: next(later) for _, _, m in parts}
    for slot, prefix in enumerate(chunk):
        for index, rest, cont in groups[prefix]:
            rows = first[slot : slot + 1]
            if rest:
                rows = torch.cat([rows, rest_logits[index]])
            logprobs = torch.log_softmax(rows.float(), dim=-1)
            results[index] = reduce(logprobs, torch.tensor(cont, device=logprobs.device))
