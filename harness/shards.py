"""Sharded evaluation (`harness eval --shard K/N`): shard K takes the items whose id hashes to K
modulo N and writes the files of one evaluation into `eval/<label>/shards/shard-K-of-N/`;
`merge_shards` then rebuilds what one unsharded run writes (every per-item record byte for byte, the
aggregates recomputed by lm-eval's own code over all items). Shards are independent processes: any
launcher can run them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import layout
from harness.errors import HarnessError
from harness.eval_config import EvalConfig, task_manager
from harness.eval_files import throughput, write_eval_files, write_run_config
from harness.io import read_json, read_jsonl, stable_hash


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def name(self) -> str:
        return layout.shard_name(self.index, self.count)

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


# What must agree for shards to be parts of one evaluation (the machine and the Python may differ).
SHARD_IDENTITY = ("label", "model", "eval_config", "configs", "versions", "git_revision", "package_versions")
PER_TASK = ("configs", "versions", "higher_is_better")


def merge_shards(run_dir: Path) -> list[str]:
    """Merge every label's shards under `run_dir`/eval into that label's unsharded files; returns the labels."""
    labels = sorted(
        p.parent.name for p in (Path(run_dir) / layout.EVAL).glob(f"*/{layout.SHARDS}") if p.is_dir()
    )
    if not labels:
        raise HarnessError(f"{run_dir}: no shards to merge (expected eval/<label>/shards/shard-K-of-N/)")
    for label in labels:
        merge_label(run_dir, label)
    return labels


def _read_shards(shards_dir: Path) -> list[dict]:
    payloads = {
        p.parent.name: read_json(p)
        for p in sorted(shards_dir.glob(f"{layout.SHARD_PATTERN}/{layout.RESULTS_NAME}"))
    }
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
    parts = _read_shards(label_dir / layout.SHARDS)
    cfg = EvalConfig(**parts[0]["eval_config"])
    dirs = [label_dir / layout.SHARDS / Shard(p["shard"]["index"], p["shard"]["count"]).name for p in parts]
    records, timing, results, n_samples, wall = {}, {}, {}, {}, {}
    for task in cfg.task_order():
        records[task] = sorted(
            (r for d in dirs for r in read_jsonl(d / layout.samples_name(task))), key=lambda r: r["doc_id"]
        )
        timing[task] = sorted(
            (
                t
                for d in dirs
                if (d / layout.timing_name(task)).exists()
                for t in read_jsonl(d / layout.timing_name(task))
            ),
            key=lambda t: t["doc_id"],
        )
        wall[task] = round(sum(p["wall_seconds"].get(task, 0.0) for p in parts), 3)
        scored = [p for p in parts if task in p["results"]]
        if not scored:
            continue
        template = scored[0]["results"][task]
        filters = {key.split(",", 1)[1] for key in template if "," in key}
        task_obj = get_task_dict([task], task_manager(cfg))[task]
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
        generation={task: throughput(timing[task], wall[task]) for task in records},
    )
    write_eval_files(label_dir, label, payload, records, timing)
    write_run_config(Path(run_dir), payload["model"], payload["eval_config"])
    return payload
