"""Prompt-lookup drafts for speculative greedy decoding (no draft model).

A row's next tokens are guessed by finding the latest earlier occurrence of its last few tokens in
its own prompt and answer, and proposing what followed there. Small models copy the problem text
and fall into loops, so on MATH-500 answers of SmolLM2-135M such guesses are right often enough that
a verified step yields about two tokens per row (three on the answers that loop to the length cap).
The model checks every guess in the same step (`FastForward.decode` with several tokens per row)
and only tokens equal to its own greedy picks are kept, so drafting changes how many forward passes
a row needs, not which tokens it produces.
"""

from __future__ import annotations


class NgramIndex:
    """Latest earlier occurrence of each n-gram (n in [min_n, max_n]) that has a token after it."""

    def __init__(self, tokens: list[int], max_n: int = 3, min_n: int = 2):
        self.sizes = range(max_n, min_n - 1, -1)
        self.tokens: list[int] = []
        self.after: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        for token in tokens:
            end = len(self.tokens)
            # The n-grams ending just before `token` now have a successor: `token` at index `end`.
            for n in self.sizes:
                if end >= n:
                    self.after[tuple(self.tokens[end - n : end])] = end
            self.tokens.append(token)

    def draft(self, k: int) -> list[int]:
        """Up to k tokens that followed the longest matching suffix last time; [] when none matches."""
        if k <= 0:
            return []
        end = len(self.tokens)
        for n in self.sizes:
            if end >= n:
                start = self.after.get(tuple(self.tokens[end - n :]))
                if start is not None:
                    return self.tokens[start : start + k]
        return []
