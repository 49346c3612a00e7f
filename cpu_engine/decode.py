"""Continuous batching: a fixed set of KV slots; a finished row's slot goes to the next prompt at once.

With `generate` on padded batches every row waits for the longest answer of its batch, so most of
a CPU's work is spent on rows that already stopped. Here each step decodes only live rows, finished
rows are reported immediately (`on_finish`), and new prompts are prefilled into free slots.
Each row's tokens depend only on its own prompt: greedy picks the argmax of the row's fp32 logits,
sampling draws from the row's own generator seeded by its request.

Two savings that keep those tokens: prompts that open with the chat template's preamble copy its
cache instead of recomputing it, and in small batches (the tail of a run, where a step costs about
the same for a few more tokens) each greedy row verifies prompt-lookup drafts (draft.py) in the
same step, keeping only the tokens its own argmax confirms.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from cpu_engine.draft import NgramIndex
from cpu_engine.llama_fast import FastForward
from cpu_engine.slots import KVSlots


@dataclass
class Sequence:
    index: int
    prompt: list[int]
    max_new: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int = 0
    tokens: list[int] = field(default_factory=list)
    finish: str | None = None
    seconds: float = 0.0
    generator: torch.Generator | None = None
    ngrams: NgramIndex | None = None

    @property
    def length(self) -> int:
        """Positions already in the cache: the prompt and every token but the newest."""
        return len(self.prompt) + len(self.tokens) - 1


class Scheduler:
    def __init__(
        self,
        fwd: FastForward,
        tokenizer,
        eos_ids: Iterable[int],
        slots: int = 64,
        prefill_tokens: int = 2048,
        span_rows: int = 16,
        draft_len: int = 8,
        step_tokens: int = 32,
        preamble: Iterable[int] = (),
    ):
        self.fwd, self.tokenizer, self.eos = fwd, tokenizer, set(eos_ids)
        self.preamble = tuple(preamble)  # tokens most prompts start with (the chat template's opening)
        self.slots, self.prefill_tokens, self.span_rows = slots, prefill_tokens, span_rows
        self.draft_len, self.step_tokens = draft_len, step_tokens

    def run(self, seqs: list[Sequence], on_finish: Callable[[Sequence], None]) -> None:
        for s in seqs:
            if not s.prompt:
                raise ValueError(f"request {s.index}: empty prompt")
            if s.temperature > 0:
                s.generator = torch.Generator(device=self.fwd.device).manual_seed(s.seed)
            if self.draft_len > 0 and s.temperature == 0:
                s.ngrams = NgramIndex(s.prompt)
        # Longest prompts first: rows admitted together then have similar lengths (less attention padding).
        pending = deque(sorted((s for s in seqs if s.max_new > 0), key=lambda s: -len(s.prompt)))
        for s in seqs:
            if s.max_new <= 0:
                s.finish = "length"
                on_finish(s)
        longest = max((len(s.prompt) + s.max_new for s in pending), default=0) + 1
        cache = KVSlots(self.fwd, min(self.slots, max(len(pending), 1)), longest=longest)
        shared = self._preamble_cache(pending)
        active: list[Sequence] = []
        while pending or active:
            started = time.perf_counter()
            if pending and len(active) < cache.shape[0]:
                rows = self._admit(pending, cache.shape[0] - len(active), shared is not None)
                self._prefill(rows, len(active), cache, shared)
                active.extend(rows)
                total = sum(len(s.prompt) for s in rows)
                for s in rows:
                    s.seconds += (time.perf_counter() - started) * len(s.prompt) / total
            else:
                kept = self._step(active, cache)
                share = (time.perf_counter() - started) / sum(kept)
                for s, n in zip(active, kept):
                    s.seconds += share * n
            self._retire(active, cache, on_finish)

    def _preamble_cache(self, pending) -> KVSlots | None:
        """The preamble's cache, computed once, when some prompt starts with it.

        Even a lone prompt takes this path: whether a prompt does must not depend on its batch."""
        if not any(self._cached_part(s, True) for s in pending):
            return None
        cache = KVSlots(self.fwd, 1, len(self.preamble) + 1)
        self.fwd.prefill([list(self.preamble)], [0], cache)
        return cache

    def _cached_part(self, s: Sequence, shared: bool) -> int:
        """How many of s's prompt tokens come from the preamble cache: all of the preamble, or none.
        The prompt must be longer than the preamble: its rest still produces the first logits."""
        n = len(self.preamble)
        return n if shared and len(s.prompt) > n > 0 and tuple(s.prompt[:n]) == self.preamble else 0

    def _prefill(self, rows: list[Sequence], first: int, cache: KVSlots, shared: KVSlots | None) -> None:
        """Prompts into slots first, first + 1, ...; a prompt that starts with the preamble gets its cache
        copied and runs only the rest."""
        past = [self._cached_part(s, shared is not None) for s in rows]
        slots = list(range(first, first + len(rows)))
        cache.ensure(max(len(s.prompt) for s in rows) + 1)
        for slot, p in zip(slots, past):
            if p:
                cache.copy_from(shared, 0, slot, p)
        logits = self.fwd.extend(
            [s.prompt[p:] for s, p in zip(rows, past)], slots, past, cache, [1] * len(rows)
        )
        self._advance(rows, logits)

    def _step(self, active: list[Sequence], cache: KVSlots) -> list[int]:
        """One decode step for every active row (with drafts to verify, see _drafts); tokens gained per row."""
        drafts = self._drafts(active)
        counts = [1 + len(d) for d in drafts]
        starts = [s.length for s in active]
        ends = [p + n for p, n in zip(starts, counts)]
        cache.ensure(max(ends))
        tokens = [t for s, d in zip(active, drafts) for t in (s.tokens[-1], *d)]
        logits = self.fwd.decode(
            torch.tensor(tokens, device=self.fwd.device), counts, starts, cache, self._spans(ends)
        )
        return self._verify(active, drafts, logits, counts)

    def _admit(self, pending: deque, free: int, shared: bool) -> list[Sequence]:
        def cost(s: Sequence) -> int:
            return len(s.prompt) - self._cached_part(s, shared)

        rows = [pending.popleft()]
        budget = self.prefill_tokens - cost(rows[0])
        while pending and len(rows) < free and cost(pending[0]) <= budget:
            budget -= cost(pending[0])
            rows.append(pending.popleft())
        return rows

    def _spans(self, ends: list[int]) -> list[tuple[int, int, int]]:
        step = self.span_rows
        return [(a, min(a + step, len(ends)), max(ends[a : a + step])) for a in range(0, len(ends), step)]

    def _drafts(self, active: list[Sequence]) -> list[list[int]]:
        """Prompt-lookup guesses for greedy rows (see draft.py), shared evenly within the step's token budget.

        Rows advance in lockstep, so the run ends with its slowest row: drafting for a few rows of
        many shortens nothing. Drafts therefore run only when every row with a guess can get at least
        two tokens of it, which on this CPU means a small batch, where a step costs about the same
        for a few more tokens (reading the weights dominates).
        """
        if self.step_tokens - len(active) < 2:  # a large batch: no room, so no lookups either
            return [[] for _ in active]
        guesses = [
            s.ngrams.draft(min(self.draft_len, s.max_new - len(s.tokens) - 1)) if s.ngrams else []
            for s in active
        ]
        wanted = sum(1 for g in guesses if g)
        each = (self.step_tokens - len(active)) // wanted if wanted else 0
        if each < 2:
            return [[] for _ in active]
        return [g[:each] for g in guesses]

    def _verify(
        self, rows: list[Sequence], drafts: list[list[int]], logits: torch.Tensor, counts: list[int]
    ) -> list[int]:
        """Each row keeps its model picks while they confirm its draft; how many tokens each row gained."""
        picks = logits.argmax(-1).tolist()
        kept, at = [], 0
        for s, guess, n in zip(rows, drafts, counts):
            if s.temperature > 0:
                self._advance([s], logits[at : at + 1])
                kept.append(1)
            else:
                gained = 0
                for j in range(n):
                    self._take(s, picks[at + j])
                    gained += 1
                    if s.finish or j == len(guess) or picks[at + j] != guess[j]:
                        break
                kept.append(gained)
            at += n
        return kept

    def _advance(self, rows: list[Sequence], logits: torch.Tensor) -> None:
        picks = logits.argmax(-1).tolist()
        for j, s in enumerate(rows):
            if s.temperature > 0:
                probs = torch.softmax(logits[j].float() / s.temperature, dim=-1)
                picks[j] = int(torch.multinomial(probs, 1, generator=s.generator))
            self._take(s, picks[j])

    def _take(self, s: Sequence, token: int) -> None:
        s.tokens.append(token)
        if s.ngrams:
            s.ngrams.extend([token])
        if token in self.eos or (s.stop and self._stopped(s)):
            s.finish = "stop"
        elif len(s.tokens) >= s.max_new:
            s.finish = "length"

    def _stopped(self, s: Sequence) -> bool:
        # A cheap look at the tail first; the full decode decides (token boundaries do not follow text).
        window = 2 * max(len(x) for x in s.stop) + 8
        tail = self.tokenizer.decode(s.tokens[-window:], skip_special_tokens=True)
        if not any(x and x in tail for x in s.stop):
            return False
        text = self.text(s)
        return any(x and x in text for x in s.stop)  # base.truncate_at_stop's test, without cutting

    def text(self, s: Sequence) -> str:
        return self.tokenizer.decode(s.tokens, skip_special_tokens=True)

    def _retire(self, active: list[Sequence], cache: KVSlots, on_finish: Callable[[Sequence], None]) -> None:
        # Keep live rows in slots [0, n): the last row moves into each hole.
        for slot in reversed(range(len(active))):
            s = active[slot]
            if s.finish is None:
                continue
            last = len(active) - 1
            if slot != last:
                cache.move(last, slot, active[last].length)
                active[slot] = active[last]
            active.pop()
            on_finish(s)
