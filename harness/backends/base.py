"""The one generation interface used by every stage: probe, teacher, evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GenRequest:
    """One generation. Give either `prompt` (already templated text) or chat `messages`."""

    prompt: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    temperature: float = 0.0  # 0 means greedy
    seed: int = 0

    def __post_init__(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenRequest needs exactly one of prompt or messages")
        if self.messages is not None and not isinstance(self.messages, tuple):
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))

    def cache_fields(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "messages": [dict(m) for m in self.messages] if self.messages else None,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "temperature": self.temperature,
            "seed": self.seed if self.temperature > 0 else 0,
        }


@dataclass
class GenResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"
    seconds: float
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    fingerprint: str
    tokenizer: Any

    def generate(
        self, requests: Sequence[GenRequest], on_result: Callable[[int, GenResult], None] | None = None
    ) -> list[GenResult]:
        """Results in request order; `on_result(i, result)` is called as each one finishes."""
        ...

    def loglikelihood(self, requests: Sequence[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]: ...

    def render(self, messages: Sequence[dict[str, str]]) -> str: ...


class LocalPrompts:
    """Prompts of a backend that tokenizes locally (hf, vllm): rendered chat text, encoded as is."""

    tokenizer: Any

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        # Rendered chat text already carries its special tokens; adding more would shift the prompt.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, request: GenRequest) -> list[int]:
        return self.encode(request.prompt if request.prompt is not None else self.render(request.messages))


def loglikelihood_tokens(i: int, ctx: list[int], cont: list[int], limit: int) -> list[int]:
    """Context + continuation, the context cut from the left (as lm-eval does) to at most `limit` tokens;
    the whole continuation and at least one context token before it must fit."""
    if not ctx or not cont:
        raise ValueError(f"request {i}: loglikelihood needs a non-empty context and continuation")
    ids = (list(ctx) + list(cont))[-limit:]
    if len(ids) <= len(cont):
        raise ValueError(f"request {i}: the continuation alone exceeds the model's {limit - 1} positions")
    return ids


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; report whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
