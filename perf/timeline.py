"""Where a generation run's time goes: prefill, then decode steps grouped by how many rows they carry,
each split into matmuls, attention and the rest (the project's default engine, one run).

    .venv/bin/python perf/timeline.py                     # 64 MATH-500 prompts, 512 tokens
    .venv/bin/python perf/timeline.py --n-prompts 16 --max-new-tokens 128

The timers wrap the scheduler's prefill and step, the linear layers and the attention call, so the
figures are those of a slightly slower run; read them as shares. A run drains: rows that stop early
leave the last steps to the longest answers, and a step's cost hardly shrinks with its rows.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--n-prompts", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=512)
    args = p.parse_args()

    from generation import _prompts  # benchmarks/ is the script's dir

    from cpu_engine import decode
    from cpu_engine.linear import Linear
    from harness.backends.base import GenRequest
    from harness.backends.hf import HFBackend
    from harness.models import resolve_model

    resolved = resolve_model(args.model)
    prompts, _ = _prompts(resolved, args.n_prompts)
    backend = HFBackend(resolved, progress=False)
    backend.generate([GenRequest(prompt=prompts[0], max_new_tokens=4)])  # builds the kernels, warms up

    spent = {"matmul": 0.0, "attention": 0.0}
    phases = collections.defaultdict(lambda: collections.Counter())

    def timed(kind, fn):
        def run(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[kind] += time.perf_counter() - start

        return run

    def phase(name_of, fn):
        def run(self, *a):
            spent["matmul"] = spent["attention"] = 0.0
            start = time.perf_counter()
            out = fn(self, *a)
            seconds = time.perf_counter() - start
            name, tokens = name_of(a, out)
            phases[name].update(
                calls=1, tokens=tokens, seconds=seconds, matmul=spent["matmul"], attention=spent["attention"]
            )
            return out

        return run

    Linear.__call__ = timed("matmul", Linear.__call__)
    if backend.fast.attend is not None:
        backend.fast.attend = timed("attention", backend.fast.attend)
    decode.Scheduler._prefill = phase(
        lambda a, _: ("prefill", sum(len(s.prompt) for s in a[0])), decode.Scheduler._prefill
    )
    decode.Scheduler._step = phase(
        lambda a, kept: (
            f"rows {(len(a[0]) - 1) // 8 * 8 + 1:2d}-{(len(a[0]) - 1) // 8 * 8 + 8:2d}",
            sum(kept),
        ),
        decode.Scheduler._step,
    )

    start = time.perf_counter()
    results = backend.generate([GenRequest(prompt=x, max_new_tokens=args.max_new_tokens) for x in prompts])
    total = time.perf_counter() - start
    useful = sum(r.completion_tokens for r in results)
    print(f"{len(prompts)} prompts: {useful} useful tokens in {total:.1f} s = {useful / total:.1f} tok/s")
    print("phase        steps  tokens  seconds   tok/s  matmul  attention  other")
    for name in sorted(phases, key=lambda n: (n != "prefill", n)):
        c = phases[name]
        other = c["seconds"] - c["matmul"] - c["attention"]
        print(
            f"{name:12s} {c['calls']:5d} {c['tokens']:7d} {c['seconds']:8.1f} {c['tokens'] / c['seconds']:7.1f} "
            f"{c['matmul']:7.1f} {c['attention']:10.1f} {other:6.1f}"
        )


if __name__ == "__main__":
    main()
