"""The one generation interface used by every stage: probe, teacher, evaluation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# The hf engine's opt-in quantisations (cpu_engine/quant.py); here so configs can name them
# without importing torch.
QUANTIZE_MODES = ("int8", "bf16")

log = logging.getLogger(__name__)


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

    def fitted_prompt_ids(self, requests: Sequence[GenRequest], context: int) -> list[list[int]]:
        """Each request's prompt tokens, cut to fit `context` with its answer (fit_prompts), before any
        cache or batch is sized from them: one long prompt would otherwise size them all."""
        return fit_prompts(
            [self.prompt_ids(r) for r in requests], [r.max_new_tokens for r in requests], context
        )


def fit_prompts(prompts: list[list[int]], max_new: Sequence[int], context: int) -> list[list[int]]:
    """lm-eval's rule: a prompt keeps its last `context - max_new_tokens` tokens (left truncation, one
    warning for the batch); a request whose answer alone fills the context is refused."""
    from harness.errors import HarnessError

    fitted, cut = [], []
    for i, (ids, new) in enumerate(zip(prompts, max_new)):
        room = context - max(new, 0)
        if len(ids) > room:
            if room < 1:
                raise HarnessError(
                    f"request {i}: max_new_tokens={new} leaves no room for the prompt in the model's "
                    f"{context}-token context; ask for fewer new tokens"
                )
            cut.append(len(ids))
            ids = ids[-room:]
        fitted.append(ids)
    if cut:
        log.warning(
            "%d prompt(s) do not fit the model's %d-token context with their answer (longest %d tokens): "
            "left-truncated to context - max_new_tokens, as lm-eval does; some content is lost",
            len(cut), context, max(cut),
        )  # fmt: skip
    return fitted


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
