"""The HF backend against plain transformers on a tiny random model; the cache in front of it."""

from __future__ import annotations

import torch

from harness.backends import GenRequest, make_backend
from harness.backends.base import truncate_at_stop
from harness.backends.cache import CachedBackend, ResultCache

PROMPTS = [
    "What is 2+2?",
    "Name a prime number larger than ten, please.",
    "Hi",
    "Write a haiku about the sea.",
]


def _requests(n_tokens=12):
    return [GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=n_tokens) for p in PROMPTS]


def test_batched_greedy_matches_plain_generate(tiny_model):
    backend = make_backend(str(tiny_model), cache=False, batch_size=4, progress=False)
    results = backend.generate(_requests())
    model, tok = backend.model, backend.tokenizer
    for req, res in zip(_requests(), results):
        ids = tok(backend.render(req.messages), add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        row = out[0, ids.shape[1] :].tolist()
        eos = tok.eos_token_id
        row = row[: row.index(eos) + 1] if eos in row else row
        assert res.text == tok.decode(row, skip_special_tokens=True)
        assert res.completion_tokens == len(row)
        assert res.prompt_tokens == ids.shape[1]


def test_loglikelihood_matches_manual_sum(tiny_model):
    backend = make_backend(str(tiny_model), cache=False, batch_size=3, progress=False)
    tok = backend.tokenizer
    pairs = [
        (tok.encode(c), tok.encode(x))
        for c, x in [("The capital of France is", " Paris"), ("One two", " three four five"), ("A", " B")]
    ]
    got = backend.loglikelihood(pairs)
    for (ctx, cont), (ll, greedy) in zip(pairs, got):
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logprobs = torch.log_softmax(backend.model(ids).logits[0, :-1].float(), -1)
        positions = range(len(ctx) - 1, len(ctx) + len(cont) - 1)
        expected = sum(logprobs[p, t].item() for p, t in zip(positions, cont))
        assert abs(ll - expected) < 1e-3
        assert greedy == all(logprobs[p].argmax().item() == t for p, t in zip(positions, cont))


class CountingBackend:
    """A real backend wrapper that counts what reaches the model."""

    def __init__(self, inner):
        self.inner, self.fingerprint, self.tokenizer, self.seen = inner, inner.fingerprint, inner.tokenizer, 0

    def render(self, messages):
        return self.inner.render(messages)

    def generate(self, requests, on_result=None):
        self.seen += len(requests)
        return self.inner.generate(requests, on_result=on_result)

    def loglikelihood(self, requests):
        self.seen += len(requests)
        return self.inner.loglikelihood(requests)


def test_cache_regenerates_nothing_and_keys_on_model(tiny_model, tmp_path):
    inner = CountingBackend(make_backend(str(tiny_model), cache=False, progress=False))
    cache = ResultCache(tmp_path / "c.sqlite")
    cached = CachedBackend(inner, cache)
    first = cached.generate(_requests() + _requests())  # duplicates are generated once
    assert inner.seen == len(PROMPTS)
    second = cached.generate(_requests())
    assert inner.seen == len(PROMPTS)
    assert [r.text for r in second] == [r.text for r in first[: len(PROMPTS)]]
    assert all(r.cached for r in second)
    different_decoding = cached.generate(
        [GenRequest(messages=({"role": "user", "content": "Hi"},), max_new_tokens=5)]
    )
    assert inner.seen == len(PROMPTS) + 1 and not different_decoding[0].cached
    inner.fingerprint = "another-model"
    other = CachedBackend(inner, cache)
    other.generate(_requests()[:1])
    assert inner.seen == len(PROMPTS) + 2
    other.code_version = "engine-after-a-scheduler-fix"  # new engine code: nothing old is served
    other.generate(_requests()[:1])
    assert inner.seen == len(PROMPTS) + 3


def test_engine_code_version_covers_each_engine_own_sources():
    from harness.backends import hf, openai  # noqa: F401  (the modules must be loaded to be hashed)
    from harness.backends.cache import engine_code_version

    local, remote = engine_code_version("harness.backends.hf"), engine_code_version("harness.backends.openai")
    assert local != remote and len(local) == 16
    assert engine_code_version("cpu_engine.native") == local  # one engine: all local sources


def test_cache_keeps_results_finished_before_a_crash(tiny_model, tmp_path):
    inner = make_backend(str(tiny_model), cache=False, batch_size=1, progress=False)

    class Crashing(CountingBackend):
        def generate(self, requests, on_result=None):
            done = []

            def boom(i, r):
                on_result(i, r)
                done.append(i)
                if len(done) == 2:
                    raise KeyboardInterrupt

            return self.inner.generate(requests, on_result=boom)

    cache = ResultCache(tmp_path / "c.sqlite")
    try:
        CachedBackend(Crashing(inner), cache).generate(_requests())
    except KeyboardInterrupt:
        pass
    counting = CountingBackend(inner)
    CachedBackend(counting, cache).generate(_requests())
    assert counting.seen == len(PROMPTS) - 2


def test_truncate_at_stop():
    assert truncate_at_stop("a\n\nQuestion: b", ["Question:", "\n\n"]) == ("a", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
    assert truncate_at_stop("abc", []) == ("abc", False)
