"""The continuous-batching engine against plain batch-1 transformers `generate` on tiny models.

Correctness only (no timings): same texts and token counts, every result streamed exactly once,
stop strings, per-request max_new_tokens, mixed prompt lengths, EOS, slot reuse and cache growth.
The shared `tiny_model` answers "\n" to everything, which would make equal outputs prove little,
so most tests use `varied_model`: the same shape with larger random weights, 3 layers and grouped
kv heads, whose greedy outputs differ from prompt to prompt and token to token.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from cpu_engine.llama_fast import unsupported_reason
from harness.backends import GenRequest, make_backend
from harness.backends.base import truncate_at_stop

SHORT = ["Hi", "What is 2+2?", "Name a prime number larger than ten, please.", "Write a haiku about the sea."]
# Long enough that the KV slots must grow past their first allocation (256 positions).
LONG = "Count the apples and the pears in this basket, then explain your reasoning. " * 24


def _saved_llama(tmp_path_factory, name: str, **overrides):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from harness.models import embedded_tokenizer

    tok = embedded_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=0.1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **overrides,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    target = tmp_path_factory.mktemp(name)
    model.save_pretrained(target)
    tok.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def varied_model(tmp_path_factory):
    return _saved_llama(tmp_path_factory, "varied-llama")


@pytest.fixture(scope="module")
def wide_head_model(tmp_path_factory):
    """SmolLM2's head size (64), which the training step's fused attention kernel takes."""
    return _saved_llama(tmp_path_factory, "wide-head-llama", head_dim=64)


# GPU variants run where torch sees one (the lent GPU machine); CI has none and skips them.
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _backend(path, **options):
    return make_backend(str(path), cache=False, progress=False, **options)


def _requests(prompts, max_new=12, **kw):
    return [
        GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=max_new, **kw) for p in prompts
    ]


def _reference(backend, request: GenRequest) -> tuple[list[int], int]:
    """Plain batch-1 `generate` for one request: (tokens up to and including EOS, prompt length)."""
    tok, model = backend.tokenizer, backend.model
    ids = tok(backend.render(request.messages), add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = ids.to(model.device)
    with torch.inference_mode():
        out = model.generate(
            ids, max_new_tokens=request.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
        )
    row = out[0, ids.shape[1] :].tolist()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
    return row[:end], ids.shape[1]


def _assert_matches_reference(backend, requests, results):
    tok = backend.tokenizer
    for req, res in zip(requests, results):
        tokens, prompt_len = _reference(backend, req)
        text, stopped = truncate_at_stop(tok.decode(tokens, skip_special_tokens=True), req.stop)
        assert res.text == text
        assert res.prompt_tokens == prompt_len
        if not stopped:
            assert res.completion_tokens == len(tokens)
            ended = len(tokens) < req.max_new_tokens or tokens[-1] in backend.eos_ids
            assert res.finish_reason == ("stop" if ended else "length")


def test_default_engine_is_continuous(tiny_model):
    backend = _backend(tiny_model)
    assert backend.engine == "continuous" and unsupported_reason(backend.model) is None
    assert ":cb" in backend.fingerprint


def test_mixed_lengths_and_slot_reuse_match_batch1_generate(varied_model):
    # 2 slots for 6 requests: finished rows hand their slot to waiting prompts.
    backend = _backend(varied_model, batch_size=2)
    requests = _requests(SHORT + [LONG, "Ok"], max_new=20)
    results = backend.generate(requests)
    _assert_matches_reference(backend, requests, results)


def test_per_request_max_new_tokens(varied_model):
    backend = _backend(varied_model, batch_size=8)
    requests = [
        GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=n)
        for p, n in zip(SHORT * 2, [1, 3, 7, 16, 2, 25, 5, 9])
    ]
    results = backend.generate(requests)
    _assert_matches_reference(backend, requests, results)
    assert [r.completion_tokens for r in results] == [1, 3, 7, 16, 2, 25, 5, 9]
    assert backend.generate(_requests(["Hi"], max_new=0))[0].text == ""


def test_streams_every_result_once_as_it_finishes(varied_model):
    backend = _backend(varied_model, batch_size=4)
    # The first request is the longest: with streaming, shorter ones are reported before it.
    requests = [
        GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=n)
        for p, n in zip(SHORT + [LONG], [30, 2, 4, 6, 8])
    ]
    seen = []
    results = backend.generate(requests, on_result=lambda i, r: seen.append((i, r)))
    assert sorted(i for i, _ in seen) == list(range(len(requests)))
    assert all(results[i] is r for i, r in seen)
    assert seen[-1][0] == 0
    assert [i for i, _ in seen].index(1) < [i for i, _ in seen].index(2)


def test_stop_strings_cut_like_the_reference(varied_model):
    backend = _backend(varied_model, batch_size=4)
    plain = backend.generate(_requests(SHORT, max_new=20))
    # Stops taken from the middle of each reference text, so every row really hits one.
    stops = [(r.text[len(r.text) // 2 : len(r.text) // 2 + 3],) for r in plain]
    requests = [
        GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=20, stop=s)
        for p, s in zip(SHORT, stops)
    ]
    results = backend.generate(requests)
    _assert_matches_reference(backend, requests, results)
    for full, cut, stop in zip(plain, results, stops):
        if stop[0].strip():
            assert cut.finish_reason == "stop"
            assert cut.completion_tokens <= full.completion_tokens
            assert stop[0] not in cut.text


@pytest.fixture(scope="module")
def tiny_with_extra_eos(varied_model, tmp_path_factory):
    """The tiny model with a second EOS id: a token it really emits, so EOS handling is exercised."""
    backend = _backend(varied_model)
    for prompt in SHORT:
        tokens, _ = _reference(backend, _requests([prompt], max_new=8)[0])
        end = next((j for j in range(2, len(tokens)) if tokens[j] not in tokens[:j]), None)
        if end is not None:
            break
    target = tmp_path_factory.mktemp("tiny-eos")
    shutil.copytree(varied_model, target, dirs_exist_ok=True)
    config = json.loads((target / "generation_config.json").read_text())
    config["eos_token_id"] = [backend.tokenizer.eos_token_id, tokens[end]]
    (target / "generation_config.json").write_text(json.dumps(config))
    return target, prompt, end + 1


def test_eos_ends_a_row_and_counts_it(tiny_with_extra_eos):
    path, prompt, expected = tiny_with_extra_eos
    backend = _backend(path, batch_size=3)
    requests = _requests(SHORT + [LONG, prompt], max_new=16)
    results = backend.generate(requests)
    _assert_matches_reference(backend, requests, results)
    assert results[-1].completion_tokens == expected and results[-1].finish_reason == "stop"


def test_reference_engine_still_available(varied_model):
    exact = _backend(varied_model, engine="generate", batch_size=1)
    assert exact.engine == "generate" and ":cb" not in exact.fingerprint
    fast = _backend(varied_model)
    requests = _requests(SHORT)
    assert [r.text for r in exact.generate(requests)] == [r.text for r in fast.generate(requests)]


def test_rows_do_not_depend_on_their_batch(varied_model):
    backend = _backend(varied_model, batch_size=16)
    requests = _requests(SHORT + [LONG], max_new=16)
    together = backend.generate(requests)
    alone = [backend.generate([r])[0] for r in requests]
    assert [r.text for r in together] == [r.text for r in alone]


def test_drafted_steps_give_the_tokens_of_plain_decoding(varied_model, monkeypatch):
    from cpu_engine.decode import Scheduler

    backend = _backend(varied_model, batch_size=4)
    # Repetitive prompts: a random tiny model copies and loops, so drafts get proposed and accepted.
    prompts = ["one two three one two three one two three", "a b a b a b a b", "x y z x y z", "Hi"]
    requests = [GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=40) for p in prompts]
    counts = {"drafted": 0, "accepted": 0}
    verify = Scheduler._verify

    def counting(self, rows, drafts, logits, n):
        kept = verify(self, rows, drafts, logits, n)
        counts["drafted"] += sum(len(d) for d in drafts)
        counts["accepted"] += sum(k - 1 for k in kept)
        return kept

    monkeypatch.setattr(Scheduler, "_verify", counting)
    drafted = backend.generate(requests)
    # Both outcomes of verification happen: drafts kept and drafts thrown away.
    assert 0 < counts["accepted"] < counts["drafted"], counts
    _assert_matches_reference(backend, requests, drafted)


def test_prompts_share_the_chat_preamble_cache(varied_model, monkeypatch):
    from cpu_engine import KVSlots

    backend = _backend(varied_model, batch_size=3)
    assert backend.tokenizer.decode(backend.preamble).endswith("user\n")
    copies = []
    copy_from = KVSlots.copy_from
    monkeypatch.setattr(KVSlots, "copy_from", lambda self, *a: copies.append(a) or copy_from(self, *a))
    requests = _requests(SHORT + [LONG], max_new=16)
    results = backend.generate(requests)
    # Every prompt starts with the preamble: each gets its cache copied, then runs only its own tokens.
    assert len(copies) == len(requests) and all(n == len(backend.preamble) for *_, n in copies)
    _assert_matches_reference(backend, requests, results)


def test_torch_path_without_native_kernels_matches_batch1_generate(varied_model, monkeypatch):
    from cpu_engine import native

    monkeypatch.setenv("HARNESS_NATIVE", "0")
    native.library.cache_clear()
    try:
        backend = _backend(varied_model, batch_size=3)
        assert backend.fast.attend is None and not backend.fast.native
        requests = _requests(SHORT + [LONG, "x y z x y z x y z"], max_new=24)
        _assert_matches_reference(backend, requests, backend.generate(requests))
    finally:
        monkeypatch.delenv("HARNESS_NATIVE")
        native.library.cache_clear()


# A logit of the forward is the end of about 6 * layers + 2 chained reductions (4 projections, attention and
# a norm per layer, the final norm and the head), the longest over K = 2 * 64 terms (the MLP's inner size).
# Summed in another order, each adds a relative error of about sqrt(K) * u (see U below); 8x that margin.
NO_FAST_PATH_TOLERANCE = 8 * (6 * 3 + 2) * 128**0.5 * 2.0**-24


def test_a_cpu_without_the_kernels_fast_path_runs_torch_and_agrees(varied_model, monkeypatch):
    # cpu_engine/features.py: ARM or an x86 without AVX2 has no vector path for any kernel family, so the
    # engine must run torch's ops there (never the C kernels' scalar loops), and give the same logits to
    # fp32 rounding.
    from cpu_engine import KVSlots, features, native

    def logits(backend):
        fwd = backend.fast
        ids = backend.encode(backend.render([{"role": "user", "content": LONG}]))
        cache = KVSlots(fwd, 1, len(ids) + 1)
        with torch.inference_mode():
            return fwd.prefill([ids], [0], cache)

    expected = logits(_backend(varied_model, batch_size=3))
    monkeypatch.setattr(features, "cpu_level", lambda: 0)
    native.library.cache_clear()
    try:
        assert native.library() is None and "SDPA" in native.describe()
        plain = _backend(varied_model, batch_size=3)
        fast = plain.fast
        assert fast.attend is None and not fast.native and fast.lm_head.panels is None
        assert fast.kernels_tag == ""
        got = logits(plain)
        assert (expected - got).abs().max() <= NO_FAST_PATH_TOLERANCE * expected.abs().max()
        requests = _requests(SHORT[:2], max_new=12)
        _assert_matches_reference(plain, requests, plain.generate(requests))
    finally:
        native.library.cache_clear()


def test_the_engine_and_the_config_name_the_same_quantisations():
    from cpu_engine import QUANTIZE_MODES
    from harness.backends.base import QUANTIZE_MODES as CONFIG_MODES

    assert QUANTIZE_MODES == CONFIG_MODES


@CUDA
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gpu_engine_matches_batch1_generate_on_the_gpu(varied_model, dtype):
    backend = _backend(varied_model, batch_size=3, device="cuda", dtype=dtype)
    assert backend.engine == "continuous" and backend.fast.attend is None
    assert backend.fingerprint.endswith(f"{dtype}:cb:cuda")
    # Slot reuse, a prompt past the first cache size, and a looping prompt that gets drafts.
    requests = _requests(SHORT + [LONG, "x y z x y z x y z"], max_new=24)
    _assert_matches_reference(backend, requests, backend.generate(requests))


def test_sampling_is_reproducible_per_request(varied_model):
    backend = _backend(varied_model, batch_size=4)
    requests = _requests(SHORT, max_new=10, temperature=0.8, seed=3)
    first = backend.generate(requests)
    again = backend.generate(list(reversed(requests)))[::-1]
    assert [r.text for r in first] == [r.text for r in again]
    reseeded = backend.generate(_requests(SHORT, max_new=10, temperature=0.8, seed=4))
    assert [r.text for r in reseeded] != [r.text for r in first]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_loglikelihood_shares_contexts_and_matches_manual_sum(varied_model, device):
    backend = _backend(varied_model, batch_size=4, device=device, dtype="float32")
    tok = backend.tokenizer
    ctx = tok.encode("The capital of France is")
    pairs = [(ctx, tok.encode(c)) for c in [" Paris", " Lyon", " a city in Europe", " Paris"]]
    pairs += [(tok.encode("One two"), tok.encode(" three four five")), (tok.encode("A"), tok.encode(" B"))]
    got = backend.loglikelihood(pairs)
    for (c, x), (ll, greedy) in zip(pairs, got):
        with torch.no_grad():
            logits = backend.model(torch.tensor([c + x], device=device)).logits
            logprobs = torch.log_softmax(logits[0, :-1].float(), -1)
        positions = range(len(c) - 1, len(c) + len(x) - 1)
        assert abs(ll - sum(logprobs[p, t].item() for p, t in zip(positions, x))) < 1e-3
        assert greedy == all(logprobs[p].argmax().item() == t for p, t in zip(positions, x))
    assert got[0] == got[3]


# --- training fast path (training/fast_sft.py) -----------------------------------------------------------
@pytest.mark.parametrize(
    "batch_size,grad_accum,pack_tokens,checkpointing,model",
    [
        (4, 1, 4096, True, "varied_model"),
        (2, 2, 4096, True, "varied_model"),
        (4, 1, 4096, False, "varied_model"),
        (4, 1, 60, False, "varied_model"),
        (2, 2, 4096, False, "varied_model"),
        (4, 1, 4096, False, "wide_head_model"),
        (4, 1, 60, False, "wide_head_model"),
    ],
)
def test_fast_sft_trainer_reproduces_trl(
    request, tmp_path, monkeypatch, batch_size, grad_accum, pack_tokens, checkpointing, model
):
    """Same examples, seed and batches: per-step losses, token counts and final weights equal TRL's.

    Without activation checkpointing the fast step packs rows (several per forward, or fewer with a
    small token budget); with it, one row per forward. Head size 64 takes the fused attention kernel."""
    import warnings

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    import training.fast_sft
    from harness.models import resolve_model
    from training.fast_sft import FastSFTTrainer

    rows = [
        {
            "prompt": [{"role": "user", "content": p * (i + 1)}],
            "completion": [{"role": "assistant", "content": "The answer is " + "four " * (3 * i + 1)}],
        }
        for i, p in enumerate(SHORT * 2)
    ]
    packs = []
    real_packs = training.fast_sft._packs
    monkeypatch.setattr(
        training.fast_sft, "_packs", lambda rows, budget: packs.append(real_packs(rows, budget)) or packs[-1]
    )
    monkeypatch.setattr(FastSFTTrainer, "pack_tokens", pack_tokens)
    runs, weights = {}, {}
    path = request.getfixturevalue(model)
    for name, cls in [("trl", SFTTrainer), ("fast", FastSFTTrainer)]:
        model, tok = resolve_model(str(path)).load()
        model.train()
        config = SFTConfig(
            output_dir=str(tmp_path / name),
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum,
            max_steps=3,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            max_length=40,
            seed=0,
            learning_rate=1e-3,
            gradient_checkpointing=checkpointing or name == "trl",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = cls(
                model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok
            )
            trainer.train()
        runs[name] = [
            (e["loss"], e["num_tokens"], e["mean_token_accuracy"])
            for e in trainer.state.log_history
            if "loss" in e
        ]
        weights[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert len(runs["fast"]) == 3
    if checkpointing:
        assert {len(pack) for step in packs for pack in step} == {1}
    elif pack_tokens >= 4096:
        assert all(len(step) == 1 for step in packs)  # the whole micro-batch in one forward
        assert max(len(step[0]) for step in packs) > 1
    else:  # the budget splits micro-batches: no pack over it unless it holds a single row
        tokens = [[sum(ids.numel() for ids, _ in pack) for pack in step] for step in packs]
        assert max(len(step) for step in packs) > 1
        assert all(
            n <= pack_tokens or len(pack) == 1
            for step, sizes in zip(packs, tokens)
            for pack, n in zip(step, sizes)
        )
    initial = dict(resolve_model(str(path)).load()[0].state_dict())
    diff, moved, largest = weight_gap(weights["trl"], weights["fast"], initial)
    assert diff <= WEIGHT_RELATIVE * moved, f"weights differ by {diff / moved:.2e} of their move"
    assert largest <= 2 * config.learning_rate * config.max_steps  # see WEIGHT_RELATIVE
    for (a, n, acc), (b, m, acc2) in zip(runs["trl"], runs["fast"]):
        assert n == m  # same batches, max_length truncation applied alike
        assert abs(a - b) < LOSS_TOLERANCE
        assert abs(acc - acc2) < 1e-6


# Tolerances of test_fast_sft_trainer_reproduces_trl, from the fp32 arithmetic rather than from one CPU.
# The two trainers compute the same sums in different orders (torch/oneDNN vs the native kernels,
# which also differ between AVX-512, AVX2 and scalar builds). A sum of K fp32 terms in another order
# differs by about sqrt(K) * u * sum|terms| (u = 2**-24; rounding errors add like a random walk;
# Higham, Accuracy and Stability, 3.1 and 4.2); the longest sum here is the softmax over the vocabulary.
U = 2.0**-24
VOCAB = 49_152  # the embedded tokenizer's vocabulary, the largest reduction (loss and tied head)
LAYERS = 3
# Loss: each token's loss is logsumexp(logits) - logit[target]; the sum of exps is normalised by its
# largest term, so |terms| <= 1 and the log is off by <= sqrt(V) * u = 1.3e-5. The mean over tokens
# does not grow it; the logits' own dot products (64 terms) add little. 8x that: 1e-4.
LOSS_TOLERANCE = 8 * VOCAB**0.5 * U
# Gradients: each passes through about 2 * (6 * LAYERS + 2) chained reductions (forward and backward:
# 4 projections, attention, norm per layer, plus head and loss), each adding a relative error of at
# most sqrt(V) * u in norm: rho = 40 * 1.3e-5 = 5.3e-4. AdamW's step m/sqrt(v) is scale-free: a
# relative error e in one step's gradient moves it by at most ~2e (bias-corrected weights of the
# first three steps are ~1/3 each: a_s/sqrt(b_s) + |m|/sqrt(v) * b_s g_s^2 / v <= 0.64 + 1.1).
GRADIENT_RELATIVE = 2 * (6 * LAYERS + 2) * VOCAB**0.5 * U
WEIGHT_RELATIVE = 2 * GRADIENT_RELATIVE  # ~1.1e-3 of the distance the weights moved
# Why a norm and not the largest element: a gradient element that cancels to ~0 has an unbounded
# relative error, and Adam turns it into an O(lr) step either way (step 1 is lr * sign(g)). One such
# element differed by 1.67e-4 on an AMD EPYC (issue 29), 2e-5 on an Intel Xeon with AMX; an element
# can at most take the opposite of every step: 2 * lr per step.
# Measured (Intel Xeon, AVX-512 + AMX, all 7 cases): norm gap <= 5.7e-6 of the move, 200x under the
# bound. Bugs it catches: the attention scale off by 1 % (gap 2.7e-2, loss off by 2.6e-4) or the
# RMSNorm weight gradient dropped (gap 8.5e-3).


def weight_gap(trl: dict, fast: dict, initial: dict) -> tuple[float, float, float]:
    """|fast - trl| and |trl - initial| over all weights (Frobenius), and the largest element's gap."""
    diff = sum(((trl[k] - fast[k]).double() ** 2).sum() for k in trl) ** 0.5
    moved = sum(((trl[k] - initial[k]).double() ** 2).sum() for k in trl) ** 0.5
    return float(diff), float(moved), max((trl[k] - fast[k]).abs().max().item() for k in trl)


BF16 = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    reason="needs oneDNN with bf16 support on this CPU",
)


@BF16
def test_bf16_linear_is_the_bf16_rounded_product():
    from cpu_engine.quant import Bf16Linear

    torch.manual_seed(0)
    w, b, x = torch.randn(96, 64), torch.randn(96), torch.randn(5, 64)
    y = Bf16Linear(w, b)(x)
    exact = x.bfloat16().double() @ w.bfloat16().double().T  # the products are exact in fp64
    assert y.dtype == torch.float32
    torch.testing.assert_close(y - b, exact.float(), rtol=2**-7, atol=1e-5)  # the result's bf16 rounding
    assert (y - b - (x @ w.T)).abs().max() > 1e-4  # and not the fp32 product


@BF16
def test_bf16_mode_generates_close_to_fp32(varied_model):
    fp32, bf16 = _backend(varied_model), _backend(varied_model, quantize="bf16")
    assert bf16.fingerprint.endswith(":bf16") and bf16.fingerprint != fp32.fingerprint
    ids = fp32.tokenizer(SHORT[2], return_tensors="pt")["input_ids"][0].tolist()
    logits = [b.fast.prefill([ids], [0], _one_slot_cache(b)) for b in (fp32, bf16)]
    scale = logits[0].abs().max()
    assert 0 < (logits[0] - logits[1]).abs().max() < 0.05 * scale
    requests = _requests(SHORT, max_new=12)
    assert [r.text for r in bf16.generate(requests)] == [r.text for r in bf16.generate(requests)]


def test_unknown_quantisation_is_one_clear_error(varied_model):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown quantisation 'fp8'"):
        _backend(varied_model, quantize="fp8")


def _one_slot_cache(backend):
    from cpu_engine import KVSlots

    return KVSlots(backend.fast, slots=1)
