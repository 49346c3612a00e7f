"""The KV cache of the continuous engine (`KVSlots`: one slot per sequence) and the index bookkeeping of
one decode step in which rows verify different numbers of tokens (`Step`)."""

from __future__ import annotations

import torch


class Step:
    """Index bookkeeping of one decode step: rows verify different numbers of tokens.

    Attention runs on a padded [row, kv head, token x query head, d] layout (query heads sharing a
    kv head become that head's query rows, as in HF's pack_gqa); a row's padding repeats its last
    token and is skipped by the kernel (limit 0).
    """

    def __init__(self, counts: list[int], starts: list[int], rep: int, device):
        n = torch.tensor(counts, device=device)
        self.rows, self.width, self.rep = len(counts), max(counts), rep
        step = torch.arange(self.width, device=device)[None]
        real = step < n[:, None]
        clamped = torch.minimum(step, n[:, None] - 1)
        position = torch.tensor(starts, device=device)[:, None] + clamped
        self.slot = torch.repeat_interleave(torch.arange(self.rows, device=device), n)
        self.pos = position[real]
        self.padded = ((torch.cumsum(n, 0) - n)[:, None] + clamped).flatten()
        self.real = real.flatten()
        # Query row (token t, head r) sees cache columns [0, position of t].
        self.seen = position.repeat_interleave(rep, dim=1)
        self.limit = torch.where(real.repeat_interleave(rep, dim=1), self.seen + 1, 0).contiguous()

    def to_rows(self, q: torch.Tensor) -> torch.Tensor:
        """[tokens, kv heads, rep, d] -> [rows, kv heads, width * rep, d], contiguous."""
        if self.width == 1:
            return q.contiguous()
        kv, d = q.shape[1], q.shape[3]
        return (
            q[self.padded]
            .view(self.rows, self.width, kv, self.rep, d)
            .transpose(1, 2)
            .reshape(self.rows, kv, self.width * self.rep, d)
        )

    def to_tokens(self, o: torch.Tensor) -> torch.Tensor:
        """The inverse of to_rows, dropping the padding: [tokens, kv heads, rep, d]."""
        if self.width == 1:
            return o
        kv, d = o.shape[1], o.shape[3]
        return (
            o.view(self.rows, kv, self.width, self.rep, d)
            .transpose(1, 2)
            .reshape(self.rows * self.width, kv, self.rep, d)[self.real]
        )


class KVSlots:
    """Per-layer K/V buffers [slots, kv_heads, capacity, head_dim]; a slot holds one sequence from position 0.

    Capacity grows on demand. Where the native attention kernel runs (CPU), the buffers are left
    uninitialised: the kernel reads no column past a row's limit, and the pages a CPU never writes are
    never committed, so a cache sized up front for prompt + max_new_tokens costs memory only for the
    positions used (growing it copied gigabytes: 4.1 s of a 74 s run of 64 prompts). Elsewhere masked
    columns still enter SDPA's products, and stray NaN bits would survive the mask: zeros, grown on
    demand, as a GPU's memory is committed when allocated.
    """

    def __init__(self, fwd, slots: int, capacity: int = 256, longest: int | None = None):
        """`fwd`: the FastForward the cache serves (its kv heads, head size, dtype, device, layers, and whether
        the native attention runs). `longest`: the most positions a slot will need, when known; an
        uninitialised cache takes them at once."""
        self.shape = (slots, fwd.kv_heads, 0, fwd.head_dim)
        self.dtype, self.device, self.n_layers = fwd.dtype, fwd.device, fwd.n_layers
        self.lazy = fwd.attend is not None
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.capacity = 0
        self.ensure(longest if self.lazy and longest else capacity)

    def ensure(self, length: int) -> None:
        if length <= self.capacity:
            return
        new = -(-max(length, self.capacity * 3 // 2) // 64) * 64
        shape = (self.shape[0], self.shape[1], new, self.shape[3])
        old_k, old_v, old = self.k, self.v, self.capacity
        make = torch.empty if self.lazy else torch.zeros
        self.k = [make(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layers)]
        self.v = [make(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layers)]
        for dst, src in zip(self.k + self.v, old_k + old_v):
            dst[:, :, :old] = src
        self.capacity = new

    def copy_from(self, other: KVSlots, src: int, dst: int, length: int) -> None:
        """Positions [0, length) of `other`'s slot src into this cache's slot dst."""
        _copy_slot(self, other, src, dst, length)

    def move(self, src: int, dst: int, length: int) -> None:
        _copy_slot(self, self, src, dst, length)


def _copy_slot(into: KVSlots, source: KVSlots, src: int, dst: int, length: int) -> None:
    for mine, theirs in zip(into.k + into.v, source.k + source.v):
        mine[dst, :, :length] = theirs[src, :, :length]
