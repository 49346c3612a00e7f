"""transformers backend: generation and log-likelihoods on CPU or GPU.

Two engines behind the one interface (see docs/performance.md for the measurements):
- "continuous" (the default for llama-family models): a lean fp32 forward pass over the model's
  own weights with continuous batching (the cpu_engine package). Same arithmetic as
  transformers; several times faster on CPU because finished rows free their slot at once.
- "generate": transformers `generate` on length-sorted, left-padded batches (padded.py); the
  fallback for other architectures, and with batch_size=1 the exact batch-1 reference.
`quantize="bf16"` or `"int8"` (opt-in, continuous engine only) changes numerics; see cpu_engine/quant.py.
In small batches the continuous engine also verifies prompt-lookup drafts (cpu_engine/draft.py): fewer steps,
the same tokens; `draft=0` turns it off.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence

import torch

from harness.backends.base import GenRequest, GenResult, LocalPrompts, loglikelihood_tokens, truncate_at_stop

log = logging.getLogger(__name__)

ENGINES = ("auto", "continuous", "generate")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def configure_threads(threads: int | None = None) -> int:
    """All cores by default; HARNESS_THREADS caps it, e.g. when several jobs share the machine
    (oversubscribed OpenMP threads spin-wait on each other and collapse throughput)."""
    n = threads or int(os.environ.get("HARNESS_THREADS") or 0) or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


class HFBackend(LocalPrompts):
    def __init__(
        self,
        resolved,
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
        progress: bool = True,
        engine: str = "auto",
        quantize: str | None = None,
        draft: int = 8,
        dtype: str | None = None,
    ):
        from harness.errors import HarnessError

        if engine not in ENGINES:
            raise HarnessError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
        configure_threads(threads)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = resolve_dtype(dtype, self.device, resolved.path)
        self.model, self.tokenizer = resolved.load(dtype=dtype, device=self.device)
        self.resolved = resolved
        self.batch_size = batch_size
        self.progress = progress
        self.draft = draft  # prompt-lookup draft tokens per row and step (decode.py); 0 turns drafting off
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos or self.tokenizer.eos_token_id])
        self.engine, self.fast = self._engine(engine, quantize)
        tag = "" if self.engine == "generate" else ":cb"
        if self.fast is not None:
            tag += self.fast.kernels_tag
        if self.device != "cpu":  # GPU kernels round differently from CPU ones; CPU keys stay as they were
            tag += f":{torch.device(self.device).type}"
        self.fingerprint = f"{resolved.fingerprint}:hf:{str(dtype).removeprefix('torch.')}{tag}"
        if quantize:
            self.fingerprint += f":{quantize}"

    def _engine(self, engine: str, quantize: str | None):
        from cpu_engine import FastForward, quantize_forward, unsupported_reason
        from harness.errors import HarnessError

        reason = unsupported_reason(self.model) if engine != "generate" else "engine=generate"
        if reason and (engine == "continuous" or quantize):
            raise HarnessError(f"the continuous engine cannot run {self.resolved.name}: {reason}")
        if reason:
            if engine == "auto":
                log.info("continuous batching unavailable (%s); using transformers generate", reason)
            return "generate", None
        try:
            fast = FastForward(self.model)
        except ValueError as exc:  # a layout unsupported_reason did not foresee
            if engine == "continuous" or quantize:
                raise HarnessError(f"the continuous engine cannot run {self.resolved.name}: {exc}") from None
            log.info("continuous batching unavailable (%s); using transformers generate", exc)
            return "generate", None
        if quantize:
            try:
                quantize_forward(fast, quantize)
            except ValueError as exc:
                raise HarnessError(str(exc)) from None
        return "continuous", fast

    @functools.cached_property
    def preamble(self) -> list[int]:
        """The tokens every chat prompt starts with (system prompt, role markers): two renders' common start."""
        if not getattr(self.tokenizer, "chat_template", None):
            return []
        a, b = (self.encode(self.render([{"role": "user", "content": c}])) for c in ("1", "Z"))
        return a[: next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))]

    # --- generation -------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        """Positions the model was built for (GPT-2's n_positions is mapped to this name by transformers)."""
        return getattr(self.model.config, "max_position_embeddings", None) or 2048

    def generate(self, requests: Sequence[GenRequest], on_result: Callable | None = None) -> list[GenResult]:
        encoded = self.fitted_prompt_ids(requests, self.context_length)
        bar = _progress(len(requests), "generate", self.progress)
        try:
            if self.fast is None:
                from harness.backends.padded import generate_padded

                return generate_padded(self, requests, encoded, on_result, bar)
            return self._generate_continuous(requests, encoded, on_result, bar)
        finally:
            bar.close()

    def _generate_continuous(self, requests, encoded, on_result, bar) -> list[GenResult]:
        from cpu_engine import Scheduler
        from cpu_engine import Sequence as Row

        results: list[GenResult | None] = [None] * len(requests)
        scheduler = Scheduler(
            self.fast,
            self.tokenizer,
            self.eos_ids,
            slots=self.batch_size,
            draft_len=self.draft,
            preamble=self.preamble,
        )

        def finished(row: Row) -> None:
            text, stopped = truncate_at_stop(scheduler.text(row), row.stop)
            finish = "stop" if stopped else row.finish
            results[row.index] = out = GenResult(text, len(row.prompt), len(row.tokens), finish, row.seconds)
            bar.update(1)
            if on_result:
                on_result(row.index, out)

        rows = [
            Row(i, enc, r.max_new_tokens, tuple(r.stop), r.temperature, r.seed if r.temperature > 0 else 0)
            for i, (r, enc) in enumerate(zip(requests, encoded))
        ]
        scheduler.run(rows, finished)
        return results  # type: ignore[return-value]

    # --- log-likelihood -----------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """Sum of log p(continuation | context) and whether greedy decoding would produce it."""
        return self._score(requests, "loglikelihood", None)

    def token_stats(
        self, requests: Sequence[tuple[list[int], list[int]]]
    ) -> list[tuple[list[float], list[float]]]:
        """Per continuation token: log p(token | context, earlier tokens), and the entropy (nats) of the
        model's next-token distribution at that position. Only local backends have the distribution."""
        from cpu_engine import per_token

        return self._score(requests, "token stats", per_token)

    def _score(self, requests, desc: str, reduce) -> list:
        max_len = self.context_length  # contexts are left-truncated to it (loglikelihood_tokens)
        bar = _progress(len(requests), desc, self.progress)
        try:
            if self.fast is None:
                from harness.backends.padded import loglikelihood_padded

                return loglikelihood_padded(self, requests, max_len, bar, reduce)
            from cpu_engine import loglikelihoods, sum_and_greedy

            fitted = [
                (loglikelihood_tokens(i, ctx, cont, max_len + 1), cont)
                for i, (ctx, cont) in enumerate(requests)
            ]
            return loglikelihoods(
                self.fast,
                fitted,
                slots=self.batch_size,
                progress=bar.update,
                reduce=reduce or sum_and_greedy,
            )
        finally:
            bar.close()


def resolve_dtype(name: str | None, device: str, path) -> torch.dtype:
    """auto: fp32 on CPU (bf16 is slower there without bf16 units: docs/performance.md); on a GPU the checkpoint's own
    dtype, as lm-eval's and transformers' "auto" (the embedded model is stored in fp32), bf16 if unknown."""
    from harness.errors import HarnessError

    if name in (None, "auto"):
        if device == "cpu":
            return torch.float32
        from transformers import AutoConfig

        stored = getattr(AutoConfig.from_pretrained(path), "dtype", None)
        return stored if stored in DTYPES.values() else torch.bfloat16
    if name not in DTYPES:
        raise HarnessError(f"unknown dtype {name!r}: choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled or total < 2, leave=False)
