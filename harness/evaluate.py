"""The evaluate stage: lm-eval's evaluator on our task definitions, through our backend.

Writes, per model, `results.json` (lm-eval shaped), `samples_<task>.jsonl` and `table.md` into
`<out_dir>/<label>/`.

Sharded (`harness eval --shard K/N`): shard K takes the items whose id hashes to K modulo N and
writes the same files into `<out_dir>/<label>/shards/shard-K-of-N/`; `merge_shards` then rebuilds
what one unsharded run writes (every per-item record byte for byte, the aggregates recomputed by
lm-eval's own code over all items). Shards are independent processes: any launcher can run them.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import layout
from harness.backends.base import QUANTIZE_MODES
from harness.backends.vllm import VllmOptions
from harness.config import section, setting
from harness.errors import HarnessError
from harness.frames import write_samples_parquet
from harness.io import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_json,
    read_jsonl,
    stable_hash,
)
from harness.paths import tasks_dir
from harness.provenance import provenance
from harness.registry import (
    BENCHMARKS,
    DEFAULT_MATH_GRADER,
    DEFAULT_REASONING_END,
    MATH_GRADERS,
    check_math_grader,
    grader_verdicts,
    item_id,
    sample_fields,
)

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers (the `eval:` section); recorded in every results file."""

    benchmarks: list[str] = setting(
        ["all"], "benchmark names (harness/registry.py), or all; resolved to names in registry order"
    )
    limit: int | None = setting(None, "items per benchmark (the first N); null: the full sets", minimum=1)
    seed: int = setting(0, "seed of lm-eval's samplers: the run's first seed", key=False)
    max_new_tokens: int | None = setting(
        None, "caps every generative task's answer length; null: each benchmark's own budget", minimum=1
    )
    bootstrap_iters: int = setting(1000, "lm-eval's bootstrap for the stderr of non-mean metrics", minimum=0)
    truthfulqa_version: str = setting(
        "2021",
        "TruthfulQA release: 2021 (817 q, published numbers) or 2025 (790 q)",
        choices=("2021", "2025"),
    )
    gpqa_seed: int = setting(0, "seed of GPQA's answer-option shuffle")
    math_grader: str = setting(
        DEFAULT_MATH_GRADER,
        "math-verify | qwen (Qwen2.5-Math's math_equal) | both: every math record carries both verdicts; "
        "the headline is math-verify's unless qwen alone",
        choices=MATH_GRADERS,
    )
    reasoning_end: str = setting(
        DEFAULT_REASONING_END,
        "generative checkers score the text after the last one; an opened, never-closed thinking is "
        'no_answer; "" scores the whole response',
    )
    vllm: VllmOptions = section(
        VllmOptions, "the engine of `backend: vllm`; the hf and openai backends ignore it"
    )
    quantize: str = setting(
        "none",
        "backend hf only: none | bf16 | int8 matmuls in the continuous engine (faster, changes the numbers; "
        "docs/performance.md)",
        choices=("none", *QUANTIZE_MODES),
    )

    def __post_init__(self) -> None:
        from harness.registry import resolve_benchmarks

        self.benchmarks = resolve_benchmarks(",".join(self.benchmarks))
        check_math_grader(self.math_grader)
        if isinstance(self.vllm, dict):  # read back from a results file
            self.vllm = VllmOptions(**self.vllm)

    def identity(self, backend: str) -> dict[str, Any]:
        """What decides the numbers: the engine options only where that engine runs (and `quantize`
        only when set, so runs from before it existed keep their stage keys)."""
        out = asdict(self)
        if backend != "vllm":
            out.pop("vllm")
        if backend != "hf" or self.quantize == "none":
            out.pop("quantize")
        return out

    def backend_options(self, backend: str) -> dict[str, Any]:
        """The keyword options this section gives the backend it evaluates with."""
        if backend == "vllm":
            return asdict(self.vllm)
        if backend == "hf" and self.quantize != "none":
            return {"quantize": self.quantize}
        return {}

    def metadata(self) -> dict[str, Any]:
        return {
            "truthfulqa_version": self.truthfulqa_version,
            "gpqa_seed": self.gpqa_seed,
            "math_grader": self.math_grader,
            "reasoning_end": self.reasoning_end,
        }

    def task_order(self) -> list[str]:
        """Chat tasks first: lm-eval's chat templating is one switch per call (see evaluate_model)."""
        return [t for chat in (True, False) for t in self.benchmarks if BENCHMARKS[t].chat == chat]


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def takes(self, task: str, item: str) -> bool:
        # A hash of the id, not its position: a shard's items do not move when a data file is reordered.
        return int(stable_hash([task, item])[:16], 16) % self.count == self.index


def parse_shard(spec: str) -> Shard:
    index, sep, count = spec.partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or not 0 <= shard.index < shard.count:
        raise HarnessError(f"--shard {spec!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return shard


def _shard_docs(manager, task: str, limit: int | None, shard: Shard) -> list[int]:
    """Indices of the docs (of the first `limit`) that belong to the shard."""
    from lm_eval.tasks import get_task_dict

    docs = get_task_dict([task], manager)[task].eval_docs
    n = len(docs) if limit is None else min(limit, len(docs))
    return [i for i in range(n) if shard.takes(task, item_id(docs[i]))]


def _task_manager(cfg: EvalConfig):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=cfg.metadata())


def evaluate_model(
    backend, model_info: dict, cfg: EvalConfig, out_dir: Path, label: str, shard: Shard | None = None
) -> dict:
    """Run every benchmark in `cfg` on `backend` (only the shard's items with `shard`); write and return the payload."""
    import lm_eval
    from lm_eval import simple_evaluate

    from harness.lm_eval_adapter import HarnessLM

    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # lm-eval logs prompts at INFO; GPQA must not leak
    logging.getLogger("lm_eval.api.task").setLevel(
        logging.ERROR
    )  # a warning per custom_dataset task, every run
    lm = HarnessLM(backend, max_new_tokens=cfg.max_new_tokens)
    manager = _task_manager(cfg)
    merged: dict[str, Any] = {
        "results": {},
        "versions": {},
        "n-samples": {},
        "configs": {},
        "higher_is_better": {},
    }
    samples: dict[str, list] = {}
    wall: dict[str, float] = {}
    for task in cfg.task_order():  # one task per call so wall time is attributable per benchmark
        started = time.time()
        selection = {"limit": cfg.limit}
        if shard is not None:
            docs = _shard_docs(manager, task, cfg.limit, shard)
            if not docs:  # lm-eval reads an empty selection as "every doc"
                samples[task], wall[task] = [], 0.0
                continue
            selection = {"limit": None, "samples": {task: docs}}
        with _whole_evaluation():
            out = simple_evaluate(
                model=lm,
                tasks=[task],
                task_manager=manager,
                apply_chat_template=BENCHMARKS[task].chat,
                log_samples=True,
                bootstrap_iters=cfg.bootstrap_iters,
                random_seed=cfg.seed,
                numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed,
                fewshot_random_seed=cfg.seed,
                confirm_run_unsafe_code=True,
                **selection,
            )
        wall[task] = round(time.time() - started, 3)
        for key in merged:
            merged[key].update(out.get(key, {}))
        samples[task] = out["samples"][task]
    records, timing = {}, {}
    for task, rows in samples.items():
        records[task], timing[task] = _records(task, rows, lm)
    payload = {
        **merged,
        "model": model_info,
        "label": label,
        "eval_config": asdict(cfg),
        "wall_seconds": wall,
        "generation": {task: _throughput(timing[task], wall[task]) for task in records},
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
        **provenance(),
    }
    target = out_dir / label
    if shard is not None:
        payload["shard"] = {"index": shard.index, "count": shard.count}
        target = target / "shards" / shard.name
    _write(target, label, payload, records, timing)
    return payload


@contextmanager
def _whole_evaluation():
    """lm-eval takes a process whose LOCAL_RANK is not 0 for a tensor-parallel worker and returns it no
    results; under our launches every process evaluates a shard of its own."""
    saved = os.environ.get("LOCAL_RANK")
    os.environ["LOCAL_RANK"] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LOCAL_RANK", None)
        else:
            os.environ["LOCAL_RANK"] = saved


def _write(target: Path, label: str, payload: dict, records: dict, timing: dict) -> None:
    for task, recs in records.items():
        atomic_write_jsonl(target / layout.samples_name(task), recs)
        write_samples_parquet(target, task, recs)  # issue 30: the same records as a typed table
        if timing[task]:
            atomic_write_jsonl(target / f"timing_{task}.jsonl", timing[task])
    # Last, so a shard without results.json is one that did not finish.
    atomic_write_json(target / "results.json", payload)
    atomic_write_text(target / "table.md", results_table({label: payload}))


# What must agree for shards to be parts of one evaluation (the machine and the Python may differ).
SHARD_IDENTITY = ("label", "model", "eval_config", "configs", "versions", "git_revision", "package_versions")
PER_TASK = ("configs", "versions", "higher_is_better")


def merge_shards(run_dir: Path) -> list[str]:
    """Merge every label's shards under `run_dir`/eval into that label's unsharded files; returns the labels."""
    labels = sorted(p.parent.name for p in (Path(run_dir) / layout.EVAL).glob("*/shards") if p.is_dir())
    if not labels:
        raise HarnessError(f"{run_dir}: no shards to merge (expected eval/<label>/shards/shard-K-of-N/)")
    for label in labels:
        merge_label(run_dir, label)
    return labels


def _read_shards(shards_dir: Path) -> list[dict]:
    payloads = {p.parent.name: read_json(p) for p in sorted(shards_dir.glob("shard-*-of-*/results.json"))}
    counts = {p["shard"]["count"] for p in payloads.values()}
    if len(counts) != 1:
        raise HarnessError(
            f"{shards_dir}: shards of different splits ({', '.join(sorted(payloads))}); "
            "keep the shards of one --shard K/N split only"
        )
    count = counts.pop()
    missing = sorted(set(range(count)) - {p["shard"]["index"] for p in payloads.values()})
    if missing:
        raise HarnessError(
            f"{shards_dir}: shard(s) {', '.join(map(str, missing))} of {count} missing or unfinished "
            "(no results.json); run them, then merge again"
        )
    first, *rest = [payloads[Shard(i, count).name] for i in range(count)]
    for other in rest:
        differs = [key for key in SHARD_IDENTITY if not _agree(key, first.get(key), other.get(key))]
        if differs:
            raise HarnessError(
                f"{shards_dir}: {Shard(other['shard']['index'], count).name} and "
                f"{Shard(0, count).name} differ in {', '.join(differs)}; shards of different "
                "evaluations (model, config or code) do not merge"
            )
    return [first, *rest]


def _agree(key: str, a, b) -> bool:
    if key in PER_TASK and isinstance(a, dict) and isinstance(b, dict):
        # A shard may have no item of a task, and then no entry for it: compare the tasks both ran.
        return all(_without_addresses(a[task]) == _without_addresses(b[task]) for task in set(a) & set(b))
    return a == b


def _without_addresses(value) -> str:
    """lm-eval writes functions in task configs as '<function f at 0x7f..>': the address is per process."""
    import json
    import re

    return re.sub(r" at 0x[0-9a-f]+>", ">", json.dumps(value, sort_keys=True, default=str))


def merge_label(run_dir: Path, label: str) -> dict:
    """Write eval/<label>/'s unsharded files from its shards; returns the merged payload."""
    from lm_eval.evaluator_utils import (
        _compute_task_aggregations,
    )  # lm-eval's own aggregation, so numbers match
    from lm_eval.tasks import get_task_dict

    label_dir = Path(run_dir) / layout.eval_dir(label)
    parts = _read_shards(label_dir / "shards")
    cfg = EvalConfig(**parts[0]["eval_config"])
    dirs = [label_dir / "shards" / Shard(p["shard"]["index"], p["shard"]["count"]).name for p in parts]
    records, timing, results, n_samples, wall = {}, {}, {}, {}, {}
    for task in cfg.task_order():
        records[task] = sorted(
            (r for d in dirs for r in read_jsonl(d / layout.samples_name(task))), key=lambda r: r["doc_id"]
        )
        timing[task] = sorted(
            (
                t
                for d in dirs
                if (d / f"timing_{task}.jsonl").exists()
                for t in read_jsonl(d / f"timing_{task}.jsonl")
            ),
            key=lambda t: t["doc_id"],
        )
        wall[task] = round(sum(p["wall_seconds"].get(task, 0.0) for p in parts), 3)
        scored = [p for p in parts if task in p["results"]]
        if not scored:
            continue
        template = scored[0]["results"][task]
        filters = {key.split(",", 1)[1] for key in template if "," in key}
        task_obj = get_task_dict([task], _task_manager(cfg))[task]
        raw = {
            (metric, flt): [r["metrics"][metric] for r in records[task]]
            for metric in records[task][0]["metrics"]
            for flt in sorted(filters)
        }
        aggregates, count = _compute_task_aggregations(task_obj, raw, cfg.bootstrap_iters)
        results[task] = {**template, "sample_len": count, **aggregates}
        n_samples[task] = {**scored[0]["n-samples"][task], "effective": count}
    payload = {key: value for key, value in parts[0].items() if key != "shard"}
    for key in PER_TASK:  # a shard without items of a task has no entry for it
        payload[key] = {
            task: next(p[key][task] for p in parts if task in p[key])
            for task in sorted({t for p in parts for t in p[key]})
        }
    payload.update(
        results=results,
        **{"n-samples": n_samples},
        wall_seconds=wall,
        merged_shards=len(parts),
        generation={task: _throughput(timing[task], wall[task]) for task in records},
    )
    _write(label_dir, label, payload, records, timing)
    _write_run_config(Path(run_dir), payload["model"], payload["eval_config"])
    return payload


def _write_run_config(run_dir: Path, model_info: dict, eval_config: dict) -> None:
    atomic_write_json(
        run_dir / layout.CONFIG, {"command": "eval", "model": model_info, "eval": eval_config, **provenance()}
    )


def _records(task: str, rows: list[dict], lm) -> tuple[list[dict], list[dict]]:
    """(per-sample records, per-sample timings). Timings live apart so that records are byte-identical
    across runs with the same config and seed."""
    bench = BENCHMARKS[task]
    records, timings = [], []
    for row in sorted(rows, key=lambda r: r["doc_id"]):
        prompt = row["arguments"][0][0]
        response = row["resps"][0][0] if bench.output_type == "generate_until" else None
        gen = lm.generations.get(prompt) if response is not None else None
        record = {
            "task": task,
            "doc_id": row["doc_id"],
            **sample_fields(task, row["doc"], response if response is not None else row["filtered_resps"]),
            "prompt": prompt,
            "response": response,
            "metrics": {m: row[m] for m in row["metrics"]},
            **_verdicts(row),
            "prompt_tokens": gen.prompt_tokens if gen else None,
            "completion_tokens": gen.completion_tokens if gen else None,
            "finish_reason": gen.finish_reason if gen else None,
        }
        if bench.redact:  # GPQA: ids, letters and scores only, never question or answer text
            record["prompt"] = record["response"] = None
        records.append(record)
        if gen is not None:
            timings.append(
                {
                    "doc_id": row["doc_id"],
                    "seconds": round(gen.seconds, 4),
                    "cached": gen.cached,
                    "completion_tokens": gen.completion_tokens,
                }
            )
    return records, timings


def _verdicts(row: dict) -> dict:
    verdicts = grader_verdicts({m: row[m] for m in row["metrics"]})
    return {} if verdicts is None else {"verdicts": verdicts}


def _throughput(timings: list[dict], wall: float) -> dict:
    """Useful tokens (up to each answer's end) per second of the task's wall time; cache hits excluded."""
    fresh = [t for t in timings if not t["cached"]]
    tokens = sum(t["completion_tokens"] for t in fresh)
    return {
        "completion_tokens": tokens,
        "generated_items": len(fresh),
        "cached_items": len(timings) - len(fresh),
        "tokens_per_second": round(tokens / wall, 2) if wall > 0 and tokens else None,
    }


def headline(payload: dict, task: str) -> tuple[float | None, float | None]:
    metric = BENCHMARKS[task].metric
    res = payload["results"].get(task, {})
    value, err = res.get(f"{metric},none"), res.get(f"{metric}_stderr,none")
    return value, (err if isinstance(err, (int, float)) else None)


def results_table(payloads: dict[str, dict]) -> str:
    """Markdown table: one row per benchmark, one column per model, headline metric in percent."""
    labels = list(payloads)
    tasks = [t for t in BENCHMARKS if any(t in p["results"] for p in payloads.values())]
    lines = [
        "| benchmark | metric | n | " + " | ".join(labels) + " |",
        "|---|---|---|" + "---|" * len(labels),
    ]
    for task in tasks:
        cells = []
        for label in labels:
            value, err = headline(payloads[label], task)
            cells.append(
                "–" if value is None else f"{100 * value:.1f}" + (f" ± {100 * err:.1f}" if err else "")
            )
        n = next(
            (
                p["n-samples"].get(task, {}).get("effective")
                for p in payloads.values()
                if task in p["n-samples"]
            ),
            "",
        )
        lines.append(f"| {task} | {BENCHMARKS[task].metric} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_eval(
    model: str,
    benchmarks: str,
    limit: int | None,
    run_dir: Path,
    backend: str = "hf",
    seed: int = 0,
    max_new_tokens: int | None = None,
    batch_size: int = 16,
    truthfulqa_version: str = "2021",
    gpqa_seed: int = 0,
    label: str | None = None,
    shard: Shard | None = None,
    backend_options: dict | None = None,
    math_grader: str = DEFAULT_MATH_GRADER,
    reasoning_end: str = DEFAULT_REASONING_END,
    quantize: str = "none",
) -> dict:
    """`harness eval`: resolve, evaluate, write the run directory, print the table."""
    import typer

    from harness.backends import make_backend
    from harness.config import build

    cfg = build(
        EvalConfig,
        {
            "benchmarks": benchmarks,
            "limit": limit,
            "max_new_tokens": max_new_tokens,
            "truthfulqa_version": truthfulqa_version,
            "gpqa_seed": gpqa_seed,
            "math_grader": math_grader,
            "reasoning_end": reasoning_end,
            "vllm": backend_options or {},
            "quantize": quantize,
        },
        "eval.",
    )
    cfg.seed = seed
    options = cfg.backend_options(backend)
    if backend == "hf":
        options["batch_size"] = batch_size
    engine = make_backend(model, backend, **options)
    label = label or _label(model)
    model_info = {"name": model, "fingerprint": engine.fingerprint, "backend": backend}
    payload = evaluate_model(engine, model_info, cfg, run_dir / layout.EVAL, label, shard)
    if shard is not None:  # the shards of one run share its directory; the merge writes the rest
        typer.echo(f"{shard.name} of {label}: {run_dir / 'eval' / label / 'shards' / shard.name}")
        return payload
    _write_run_config(run_dir, model_info, asdict(cfg))
    typer.echo(results_table({label: payload}))
    typer.echo(f"run directory: {run_dir}")
    return payload


def _label(model: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)
