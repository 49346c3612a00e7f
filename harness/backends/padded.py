"""The reference engine: transformers `generate` (and forward) on length-sorted, left-padded batches.

Kept for models the lean forward pass does not cover, and as the exact reference: with
batch_size=1 it is plain batch-1 `generate`, which is what lm-eval's `hf` model runs.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

from harness.backends.base import GenResult, truncate_at_stop


def generate_padded(backend, requests, encoded, on_result, bar) -> list[GenResult]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(requests):
        # Each row's own stop strings: a batch-wide union would stop rows on another row's stops.
        groups[(r.max_new_tokens, r.temperature, r.seed if r.temperature > 0 else 0, tuple(r.stop))].append(i)
    results: list[GenResult | None] = [None] * len(requests)
    for (max_new, temperature, seed, stop), idx in groups.items():
        idx.sort(key=lambda i: len(encoded[i]), reverse=True)
        for start in range(0, len(idx), backend.batch_size):
            batch = idx[start : start + backend.batch_size]
            outs = _batch(backend, [encoded[i] for i in batch], max_new, temperature, seed, stop)
            for i, out in zip(batch, outs):
                results[i] = out
                if on_result:
                    on_result(i, out)
            bar.update(len(batch))
    return results  # type: ignore[return-value]


@torch.inference_mode()
def _batch(backend, seqs, max_new, temperature, seed, stop) -> list[GenResult]:
    started = time.time()
    tok, device = backend.tokenizer, backend.device
    width = max(len(s) for s in seqs)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    kwargs = dict(max_new_tokens=max_new, pad_token_id=pad, do_sample=temperature > 0)
    if temperature > 0:
        torch.manual_seed(seed)
        kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tok)
    if max_new <= 0:
        out = input_ids
    else:
        out = backend.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
    elapsed = time.time() - started
    results = []
    for row, seq in zip(out[:, width:].tolist(), seqs):
        n = next((j + 1 for j, t in enumerate(row) if t in backend.eos_ids), None)
        tokens = row[:n] if n else [t for t in row if t != pad][:max_new]
        text = tok.decode(tokens, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, stop)
        finish = "stop" if (n is not None or stopped) else "length"
        results.append(GenResult(text, len(seq), len(tokens), finish, elapsed / len(seqs)))
    return results


@torch.inference_mode()
def loglikelihood_padded(backend, requests, max_len, bar, reduce=None) -> list:
    """`reduce(logprobs, target)` per request (score.py's); by default (sum, greedy) as lm-eval asks."""
    from cpu_engine import sum_and_greedy

    reduce = reduce or sum_and_greedy
    order = sorted(range(len(requests)), key=lambda i: -(len(requests[i][0]) + len(requests[i][1])))
    results: list = [None] * len(requests)
    device, pad = backend.device, backend.tokenizer.pad_token_id
    for start in range(0, len(order), backend.batch_size):
        batch = order[start : start + backend.batch_size]
        # Left-truncate like lm-eval: keep the continuation and as much context as fits.
        seqs = [(requests[i][0] + requests[i][1])[-(max_len + 1) :][:-1] for i in batch]
        conts = [requests[i][1] for i in batch]
        width = max(len(s) for s in seqs)
        keep = max(len(c) for c in conts)
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
        # Left padding needs explicit positions, or padded rows would be scored at shifted positions.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # Only the last `keep` positions are scored: skip the full-vocabulary projection elsewhere.
        logits = backend.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
        ).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, i, cont in zip(range(len(batch)), batch, conts):
            lp = logprobs[row, keep - len(cont) :]
            results[i] = reduce(lp, torch.tensor(cont, device=device))
        bar.update(len(batch))
    return results
