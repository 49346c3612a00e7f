"""Each native kernel family against torch.compile (inductor's CPU backend) on the shapes the engine runs.

For SmolLM2-135M's shapes (hidden 576, 9 query and 3 kv heads of 64, MLP 1536, vocabulary 49,152), each
case times the native kernel and `torch.compile` of the torch code the engine runs without it (the same
function the engine falls back to), after warm-up and compilation, the two alternating, median of
`--repeats`. It prints one line per case with both times and the ratio compiled / native (above 1: the
kernel is faster). The margin rule (docs/performance.md): a family stays only where its kernels beat
torch.compile by at least `--margin` (10 %) on these shapes; the last lines say so per family.

    .venv/bin/python perf/kernels.py                       # every family, 20 repeats
    .venv/bin/python perf/kernels.py --families gemm,attention --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from cpu_engine.features import FAMILIES, GEMM_MAX_ROWS  # the fast-path rule: one case list per family

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 576, 9, 3, 64, 1536, 49_152


def _time(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(
    native: Callable[[], object], compiled: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds per call of each; warm-up (and compilation) first, then alternating rounds."""
    for fn in (native, compiled, native, compiled):
        fn()
    once = max(_time(native, 1), 1e-6)
    calls = max(1, min(200, int(0.02 / once)))  # about 20 ms a round
    rounds: dict[str, list[float]] = {"native": [], "compiled": []}
    for _ in range(repeats):
        rounds["native"].append(_time(native, calls))
        rounds["compiled"].append(_time(compiled, calls))
    return statistics.median(rounds["native"]), statistics.median(rounds["compiled"])


def _compile(fn):
    # One shape per case (dynamic=False), so one compiled graph each: the cases of a family share a code
    # object and would pass dynamo's default limit of 8 recompilations, falling back to eager.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
    return torch.compile(fn, dynamic=False)


GEMM_ROWS = (1, 8, 64, 128, 256, 512)  # decode steps (1-64 rows) and prefill calls (up to 2,048 rows)


def gemm_cases():
    from cpu_engine import native

    g = torch.Generator().manual_seed(0)
    weights = {
        "qkv": (HEADS + 2 * KV_HEADS) * HEAD_DIM,
        "o": HIDDEN,
        "gate_up": 2 * INTER,
        "down": HIDDEN,
        "lm_head": VOCAB,
    }
    for name, n in weights.items():
        k = INTER if name == "down" else HIDDEN
        w = torch.randn(n, k, generator=g) / k**0.5
        panels = native.pack_panels(w)
        linear = _compile(lambda x, w=w: F.linear(x, w))
        for rows in GEMM_ROWS:
            x = torch.randn(rows, k, generator=g)
            yield (
                f"{name} {rows}x{k}x{n}",
                (lambda x=x, p=panels: native.gemm(x, p)),
                (lambda x=x, f=linear: f(x)),
            )


def attention_cases():
    from cpu_engine import native

    g = torch.Generator().manual_seed(1)

    def sdpa(q, kc, vc, limit):  # the engine's torch path: SDPA over the slots with a column mask
        mask = torch.arange(kc.shape[2])[None, None, None] < limit[:, None, :, None]
        return F.scaled_dot_product_attention(q, kc, vc, attn_mask=mask, scale=HEAD_DIM**-0.5)

    compiled = _compile(sdpa)
    for rows, length in ((1, 512), (8, 512), (64, 512), (8, 2048)):
        q = torch.randn(rows, KV_HEADS, HEADS // KV_HEADS, HEAD_DIM, generator=g)
        kc = torch.randn(rows, KV_HEADS, length, HEAD_DIM, generator=g)
        vc = torch.randn(rows, KV_HEADS, length, HEAD_DIM, generator=g)
        limit = torch.full((rows, HEADS // KV_HEADS), length, dtype=torch.int64)
        yield (
            f"decode {rows} rows x {length} positions",
            lambda q=q, kc=kc, vc=vc, limit=limit: native.attend(q, kc, vc, limit, HEAD_DIM**-0.5),
            lambda q=q, kc=kc, vc=vc, limit=limit: compiled(q, kc, vc, limit),
        )


def elementwise_cases():
    from cpu_engine import native
    from cpu_engine.llama_fast import rms_norm

    g = torch.Generator().manual_seed(2)
    w = torch.randn(HIDDEN, generator=g)

    def residual_norm(x, delta):
        x = x + delta
        return x, rms_norm(x, w, 1e-5)

    def silu_mul(gu):
        return F.silu(gu[:, :INTER]) * gu[:, INTER:]

    add_norm, gate = _compile(residual_norm), _compile(silu_mul)
    for rows in (1, 64, 512):
        x, delta = torch.randn(rows, HIDDEN, generator=g), torch.randn(rows, HIDDEN, generator=g)
        gu = torch.randn(rows, 2 * INTER, generator=g)
        yield (
            f"residual_norm {rows}x{HIDDEN}",
            lambda x=x, d=delta: native.residual_norm(x.clone(), d, w, 1e-5),
            lambda x=x, d=delta: add_norm(x.clone(), d),
        )
        yield f"silu_mul {rows}x{INTER}", (lambda gu=gu: native.silu_mul(gu)), (lambda gu=gu: gate(gu))
    yield from _rope_cases(g)


def _rope_cases(g):
    from cpu_engine import native

    capacity, d = 2048, HEAD_DIM
    angles = torch.arange(capacity)[:, None] * torch.rand(d // 2, generator=g)[None]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

    def rope_store(qkv, slot, pos, kc, vc):  # the engine's torch path: rotate, then index into the cache
        heads = qkv.view(qkv.shape[0], HEADS + 2 * KV_HEADS, d)
        c, s = cos[pos][:, None], sin[pos][:, None]

        def rot(x):
            return x * c + torch.cat((-x[..., d // 2 :], x[..., : d // 2]), -1) * s

        kc[slot, :, pos] = rot(heads[:, HEADS : HEADS + KV_HEADS])
        vc[slot, :, pos] = heads[:, HEADS + KV_HEADS :]
        return rot(heads[:, :HEADS])

    compiled = _compile(rope_store)
    for tokens in (8, 512):
        qkv = torch.randn(tokens, (HEADS + 2 * KV_HEADS) * d, generator=g)
        slot = torch.arange(tokens) % 8
        pos = torch.arange(tokens) // 8
        kc, vc = torch.zeros(8, KV_HEADS, capacity, d), torch.zeros(8, KV_HEADS, capacity, d)
        yield (
            f"rope_store {tokens} tokens",
            lambda a=(qkv, cos, sin, slot, pos, kc, vc): native.rope_store(*a, HEADS),
            lambda a=(qkv, slot, pos, kc, vc): compiled(*a),
        )


def train_cases():
    from training import fused

    g = torch.Generator().manual_seed(3)

    def loss_torch(logits, target):
        logp = logits.log_softmax(-1)
        loss = F.nll_loss(logp, target, reduction="sum")
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum()
            hits = (logp.argmax(-1) == target).sum()
        loss.backward()
        return loss, entropy, hits

    def loss_native(logits, target):
        loss, entropy, hits = fused.token_loss(logits, target)
        loss.backward()
        return loss, entropy, hits

    compiled_loss = _compile(loss_torch)
    logits = torch.randn(512, VOCAB, generator=g).requires_grad_()
    target = torch.randint(0, VOCAB, (512,), generator=g)
    yield (
        f"token_loss fwd+bwd 512x{VOCAB}",
        (lambda: loss_native(logits, target)),
        (lambda: compiled_loss(logits, target)),
    )


def train_attention_cases():
    from training import fused

    g = torch.Generator().manual_seed(4)
    lengths = [700, 500, 848]  # rows of one pack, end to end
    tokens = sum(lengths)
    ids = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    mask = (ids[:, None] == ids[None]) & torch.ones(tokens, tokens, dtype=torch.bool).tril()

    def torch_attention(q, k, v):  # what the training step runs without the kernel: SDPA with the pack's mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=HEAD_DIM**-0.5, enable_gqa=True)
        out.sum().backward()

    def native_attention(q, k, v):
        fused.row_attention(q, k, v, lengths, HEAD_DIM**-0.5).sum().backward()

    compiled = _compile(torch_attention)
    q = torch.randn(1, HEADS, tokens, HEAD_DIM, generator=g).requires_grad_()
    k, v = (torch.randn(1, KV_HEADS, tokens, HEAD_DIM, generator=g).requires_grad_() for _ in range(2))
    if fused.row_attention(q, k, v, lengths, HEAD_DIM**-0.5) is None:
        return  # no AVX-512 here: the kernel does not run, nothing to compare
    yield f"row_attention fwd+bwd {lengths}", (lambda: native_attention(q, k, v)), (lambda: compiled(q, k, v))


CASES = {
    "gemm": gemm_cases,
    "attention": attention_cases,
    "elementwise": elementwise_cases,
    "train": train_cases,
    "train_attention": train_attention_cases,
}


def _group(family: str, case: str) -> str:
    """What one verdict covers: a matmul row count (the engine routes by rows), one training kernel, or
    a whole family."""
    if family == "gemm":
        return f"gemm {case.split()[1].split('x')[0]} rows"
    if family == "train":
        return f"train {case.split()[0]}"
    return family


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated: {', '.join(FAMILIES)}")
    p.add_argument("--repeats", type=int, default=20, help="alternating rounds per case (median)")
    p.add_argument(
        "--margin", type=float, default=0.10, help="how much faster than torch.compile a kernel must be"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = p.parse_args()
    families = [f for f in args.families.split(",") if f]
    if unknown := [f for f in families if f not in CASES]:
        p.error(f"unknown families {unknown}: choose from {', '.join(FAMILIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    import cpu_engine
    from cpu_engine import features, native

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, kernels: {cpu_engine.describe()}")  # fmt: skip
    if native.library() is not None:
        print(features.openmp_check(native.library()))
    print(f"{'family':<16} {'case':<38} {'native ms':>10} {'compiled ms':>12} {'ratio':>7}")
    worst: dict[str, float] = {}
    with torch.inference_mode(False):
        for family in families:
            if native.library() is None:
                print(f"{family:<16} no native kernels here (not built or no fast path): nothing to compare")
                continue
            for name, run_native, run_compiled in CASES[family]():
                mine, theirs = compare(run_native, run_compiled, args.repeats)
                ratio = theirs / mine
                group = _group(family, name)
                worst[group] = min(worst.get(group, ratio), ratio)
                print(f"{family:<16} {name:<38} {mine * 1e3:>10.3f} {theirs * 1e3:>12.3f} {ratio:>6.2f}x")
    print(f"\nmargin rule: a kernel runs where its slowest case is >= {1 + args.margin:.2f}x torch.compile")
    for group, ratio in worst.items():
        verdict = "keep" if ratio >= 1 + args.margin else "REMOVE (does not beat torch.compile by the margin)"
        print(f"{group:<24} slowest case {ratio:.2f}x: {verdict}")
    if rows := [r for r in GEMM_ROWS if f"gemm {r} rows" in worst]:
        limit = 0  # the engine's rule is a row limit: the native matmul up to the first row count that loses
        for r in rows:
            if worst[f"gemm {r} rows"] < 1 + args.margin:
                break
            limit = r
        print(f"gemm: native up to {limit} rows (cpu_engine/features.py GEMM_MAX_ROWS = {GEMM_MAX_ROWS})")


if __name__ == "__main__":
    main()
