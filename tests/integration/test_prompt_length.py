"""A prompt longer than the model's context is cut by lm-eval's rule before anything is allocated."""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import textwrap

import pytest

from harness.backends import make_backend
from harness.backends.base import fit_prompts
from harness.errors import HarnessError

CONTEXT = 2048  # the tiny test model's max_position_embeddings (harness/tiny_model.py)
# One 200 KB MATH-like problem: some 60,000 tokens, thirty times the context.
LONG = "Let $x^2 + 3x - 7 = 0$ and $y = 2x + 1$; find all real $y$. " * 3300
# Address space the generation may use (model, torch, tokenizer included): the uncut prompt's KV
# cache and attention scores need tens of GB (the out-of-memory kill of issue 29), the cut one ~1 GB.
ADDRESS_SPACE = 8 << 30

GENERATE_ONCE = textwrap.dedent(
    """
    import json, logging, resource, sys
    from harness.backends import make_backend
    from harness.backends.base import GenRequest

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    path, engine, prompt = sys.argv[1], sys.argv[2], sys.stdin.read()
    backend = make_backend(path, cache=False, batch_size=4, progress=False, engine=engine, threads=1, device="cpu")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    long, short = backend.generate(
        [GenRequest(prompt=prompt, max_new_tokens=8), GenRequest(prompt="What is 1+1?", max_new_tokens=8)]
    )
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"prompt_tokens": [long.prompt_tokens, short.prompt_tokens], "grown_kib": grown}))
    """
)


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("engine", ["continuous", "generate"])
def test_a_200kb_prompt_is_left_truncated_with_a_warning_in_bounded_memory(tiny_model, engine):
    done = subprocess.run(
        [sys.executable, "-c", GENERATE_ONCE, str(tiny_model), engine],
        input=LONG,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit_address_space,
        env={**os.environ, "HARNESS_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["prompt_tokens"][0] == CONTEXT - 8  # the last context - max_new_tokens tokens
    assert out["prompt_tokens"][1] < 20  # the short prompt in the same batch is untouched
    assert "left-truncated" in done.stderr and "2048-token context" in done.stderr
    assert out["grown_kib"] < 1 << 20  # under 1 GiB beyond the loaded model


def test_scoring_cuts_the_context_from_the_left(tiny_model):
    backend = make_backend(str(tiny_model), cache=False, batch_size=2, progress=False, threads=1)
    ctx = backend.encode(LONG[:40_000])
    assert len(ctx) > CONTEXT
    cont = backend.encode(" so y = 3")
    keep = CONTEXT + 1 - len(cont)  # inputs are context + continuation minus the last token
    [(whole, _)] = backend.loglikelihood([(ctx, cont)])
    [(cut, _)] = backend.loglikelihood([(ctx[-keep:], cont)])
    assert whole == pytest.approx(cut, abs=1e-4)


def test_the_rule_cuts_from_the_left_and_refuses_an_answer_that_fills_the_context(caplog):
    prompts = [list(range(100)), list(range(5))]
    with caplog.at_level(logging.WARNING):
        fitted = fit_prompts(prompts, [40, 40], context=64)
    assert fitted == [list(range(76, 100)), list(range(5))]
    assert "1 prompt(s)" in caplog.text and "longest 100 tokens" in caplog.text
    assert fit_prompts(prompts, [0, 0], context=100) == prompts  # a prompt that fits is kept whole
    with pytest.raises(HarnessError, match="max_new_tokens=64 leaves no room for the prompt"):
        fit_prompts(prompts, [64, 64], context=64)
