"""lm-eval's model interface on top of our backend, so lm-eval's evaluator drives the benchmarks
while generation and caching stay ours (one backend for every stage)."""

from __future__ import annotations

import json

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from harness.backends.base import GenRequest, GenResult
from harness.errors import HarnessError


@register_model("cgd-harness")
class HarnessLM(TemplateLM):
    def __init__(self, backend=None, max_new_tokens: int | None = None, **kwargs):
        super().__init__()
        if backend is None:  # built by lm_eval's CLI: --model cgd-harness --model_args model=...
            from harness.backends import make_backend
            from harness.defaults import DEFAULT_MODEL

            backend = make_backend(kwargs.pop("model", DEFAULT_MODEL), kwargs.pop("backend", "hf"))
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.max_new_tokens = max_new_tokens
        # Generation metadata (tokens, seconds) by prompt, for the per-sample records.
        self.generations: dict[str, GenResult] = {}

    # --- tokenisation -------------------------------------------------------------------------
    # A remote backend (an OpenAI-compatible server) has no local tokenizer: the server applies its
    # chat template, so chat prompts travel as the messages themselves (the backend's `render`), and
    # benchmarks that need token ids (log-likelihoods) are refused with one line.
    @property
    def eot_token_id(self) -> int:
        return self._local_tokenizer().eos_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self._local_tokenizer()(string, add_special_tokens=bool(add_special_tokens))["input_ids"]

    def _local_tokenizer(self):
        if self.tokenizer is None:
            raise HarnessError(
                f"log-likelihood benchmarks (GPQA MC, TruthfulQA) need token ids, which the "
                f"{self.backend.fingerprint} backend cannot give; score them with a local backend"
            )
        return self.tokenizer

    @property
    def tokenizer_name(self) -> str:
        name = self.tokenizer.name_or_path if self.tokenizer is not None else self.backend.fingerprint
        return name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if not chat_template:
            return None
        return self.tokenizer.chat_template if self.tokenizer is not None else "applied by the server"

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        if self.tokenizer is None:
            return self.backend.render(chat_history)
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _request_fields(self, context: str) -> dict:
        """A prompt for the backend: text, or for a remote backend the chat messages it rendered."""
        if self.tokenizer is None:
            try:
                messages = json.loads(context)
            except json.JSONDecodeError:
                messages = None
            if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
                return {"messages": tuple(messages)}
        return {"prompt": context}

    # --- requests -----------------------------------------------------------------------------
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        return self.backend.loglikelihood([(ctx, cont) for _, ctx, cont in requests])

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        pairs = [([self.eot_token_id], self.tok_encode(req.args[0])) for req in requests]
        return [ll for ll, _ in self.backend.loglikelihood(pairs)]

    def _max_new_tokens(self, task: str | None, requested: int | None) -> int:
        return self.max_new_tokens or int(requested or 512)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        gen_requests = []
        for req in requests:
            context, kwargs = req.args
            kwargs = dict(kwargs or {})
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            temperature = float(kwargs.get("temperature") or 0.0) if kwargs.get("do_sample") else 0.0
            gen_requests.append(
                GenRequest(
                    **self._request_fields(context),
                    max_new_tokens=self._max_new_tokens(
                        getattr(req, "task_name", None), kwargs.get("max_gen_toks")
                    ),
                    stop=tuple(s for s in until if s),
                    temperature=temperature,
                    seed=int(kwargs.get("seed") or 0),
                )
            )
        results = self.backend.generate(gen_requests)
        for req, res in zip(requests, results):
            self.generations[req.args[0]] = res
        return [r.text for r in results]
