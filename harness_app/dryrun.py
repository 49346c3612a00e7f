"""`harness compare --dry-run`: the resolved plan of a compare run, without running or writing anything.

Reads the profile and the benchmark data (offline from HARNESS_DATA_DIR) and nothing else: no
model is loaded, no teacher asked, no run directory created.
"""

from __future__ import annotations

from pathlib import Path

from harness import distributed
from harness.errors import HarnessError
from harness_app.run_config import RunConfig


def plan_lines(config: RunConfig, output: Path | None = None) -> list[str]:
    data, train, cfg = config.data, config.train, config.eval
    variants = config.labels()
    processes = distributed.world_size()
    per_process = train.batch_size * train.grad_accum
    teacher = config.teacher
    options = teacher.options()
    lines = [
        f"plan of `harness compare --profile {config.profile}` (dry run: nothing runs, nothing is written)",
        f"run directory: {output or Path('runs') / config.run_id()}",
        f"student: {config.model} (backend {config.backend})",
        f"teacher: {teacher.file or teacher.model}" + (f" {options}" if options else ""),
        "stages:",
        f"  1. data: {data.n_problems} training + {data.n_val} validation problems from {data.source}; "
        + (
            "critiques read from the teacher file"
            if teacher.file
            else f"student probe ({data.probe_max_new_tokens} new tokens), teacher critique + refinement each"
        ),
        f"  2. train: {len(variants)} run(s) ({', '.join(label for label, _, _ in variants)}), "
        f"{train.max_steps} optimizer steps each, lr {train.learning_rate}, max length {train.max_length}",
        f"     global batch = {train.batch_size} per process x processes x {train.grad_accum} accumulation"
        f" = {per_process * processes} with this launch's {processes} process(es)",
        f"  3. evaluate: base + {len(variants)} variant(s) = {len(variants) + 1} models x "
        f"{len(cfg.benchmarks)} benchmarks",
        "  4. report (tables, paired tests, drift) from the run directory",
        "GPUs:",
        f"  training: one per launched process ({processes} now; set by accelerate launch / torchrun, "
        "docs/scale-out.md)",
    ]
    if config.backend == "vllm":
        engine = cfg.vllm
        lines.append(
            f"  evaluation: {engine.tensor_parallel_size} per vLLM replica x "
            f"{engine.data_parallel_size} replica(s) = "
            f"{engine.tensor_parallel_size * engine.data_parallel_size} (vLLM takes "
            f"{engine.gpu_memory_utilization:.0%} of each; max_model_len {engine.max_model_len})"
        )
    else:
        lines.append(f"  evaluation: {config.backend} backend, in rank 0's process")
    counts = _items(cfg)
    lines.append(f"items per benchmark (limit: {cfg.limit if cfg.limit is not None else 'none'}):")
    lines += [
        f"  {task:<18} {n if n is not None else 'unknown: data not available offline'}"
        for task, n in counts.items()
    ]
    known = [n for n in counts.values() if n is not None]
    floor = "at least " if len(known) < len(counts) else ""
    lines.append(
        f"  per model: {floor}{sum(known)} items; all models: {floor}{sum(known) * (len(variants) + 1)}"
    )
    lines += planner_lines(config)
    return lines


def _items(cfg) -> dict[str, int | None]:
    from harness.registry import get

    counts: dict[str, int | None] = {}
    for task in cfg.benchmarks:
        try:
            n = len(get(task).load_rows(**cfg.metadata()))
        except (HarnessError, OSError):  # not in HARNESS_DATA_DIR and no network: say so, do not guess
            counts[task] = None
            continue
        counts[task] = n if cfg.limit is None else min(n, cfg.limit)
    return counts


def planner_lines(config: RunConfig) -> list[str]:
    """The statistics planner's table (`harness plan`): what the comparisons could detect."""
    from cgd.hypotheses import HYPOTHESES
    from harness.plan import plan_text

    return [
        "",
        "What the comparisons could detect (harness plan):",
        plan_text(config.as_dict(), HYPOTHESES).rstrip(),
    ]
