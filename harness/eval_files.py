"""What an evaluation writes into its directory (eval/<label>/ or one shard of it; names from
harness.layout): the sample records, their parquet table, the timings, `results.json` last, and
`table.md`; and the run's `config.json` of a `harness eval`."""

from __future__ import annotations

from pathlib import Path

from harness import layout
from harness.frames import write_samples_parquet
from harness.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from harness.provenance import provenance
from harness.registry import BENCHMARKS


def write_eval_files(target: Path, label: str, payload: dict, records: dict, timing: dict) -> None:
    for task, recs in records.items():
        atomic_write_jsonl(target / layout.samples_name(task), recs)
        write_samples_parquet(target, task, recs)  # issue 30: the same records as a typed table
        if timing[task]:
            atomic_write_jsonl(target / layout.timing_name(task), timing[task])
    # Last, so a shard without results.json is one that did not finish.
    atomic_write_json(target / layout.RESULTS_NAME, payload)
    atomic_write_text(target / layout.TABLE_NAME, results_table({label: payload}))


def write_run_config(run_dir: Path, model_info: dict, eval_config: dict) -> None:
    atomic_write_json(
        run_dir / layout.CONFIG, {"command": "eval", "model": model_info, "eval": eval_config, **provenance()}
    )


def throughput(timings: list[dict], wall: float) -> dict:
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
