"""`harness data build`: training problems → student probe → teacher critiques → per-method datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli import common
from harness.errors import HarnessError

SetOpt = typer.Option(
    None,
    "--set",
    help="KEY=VALUE, repeatable: teacher.<option> (api_key_env, concurrency, "
    "timeout_s, max_retries, temperature, max_new_tokens, ...) or columns.<ours>=<theirs> "
    "to map a dataset's question/solution/answer/id columns.",
)


def parse_sets(items: list[str] | None) -> dict[str, dict[str, str]]:
    """['teacher.concurrency=4', 'columns.question=prompt'] → {'teacher': {...}, 'columns': {...}}."""
    groups: dict[str, dict[str, str]] = {"teacher": {}, "columns": {}}
    for item in items or []:
        key, sep, value = item.partition("=")
        group, dot, name = key.strip().partition(".")
        if not sep or not dot or group not in groups or not name:
            raise HarnessError(
                f"bad --set {item!r}: expected teacher.<option>=<value> or columns.<name>=<column>"
            )
        groups[group][name] = value.strip()
    return groups


def split_list(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def data_build(
    methods: str = typer.Option(
        "sft,cft,cgd",
        "--methods",
        help="Comma-separated: sft, distill-sft, cft, cgd, refine-nocritique, cgd-shuffled, cgd-generic.",
    ),
    teacher: str = typer.Option(
        "reference", "--teacher", help="reference, openai:<base_url>#<model>, hf:<model>."
    ),
    teacher_file: Path | None = typer.Option(
        None, "--teacher-file", help="An existing critique dataset (JSONL): skips probe and teach."
    ),
    model: str = common.ModelOpt,
    backend: str = typer.Option(
        "hf", "--backend", help="Generation backend of the probed student: hf or vllm."
    ),
    n_problems: int | None = typer.Option(32, "--n-problems", min=1, help="Training problems."),
    n_val: int = typer.Option(
        16, "--n-val", min=0, help="Held-out validation problems (for checkpoint selection)."
    ),
    source: str = typer.Option(
        "math_train", "--source", help="math_train, a local .jsonl, or hf:<dataset>[:<split>]."
    ),
    subjects: str | None = typer.Option(None, "--subjects", help="Comma-separated MATH subjects to keep."),
    levels: str | None = typer.Option(None, "--levels", help="Comma-separated levels to keep, e.g. 1,2,3."),
    keep_near_duplicates: bool = typer.Option(
        False, "--keep-near-duplicates", help="Keep the 14 math_train near-copies of MATH-500 problems."
    ),
    probe_max_new_tokens: int = typer.Option(512, "--probe-max-new-tokens", min=1),
    seed: int = common.SeedOpt,
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Run directory (default runs/<stamp>-data)."),
    sets: list[str] | None = SetOpt,
) -> None:
    """Build the training datasets of METHODS in the run dir; finished stages are skipped."""
    from cgd.build import BuildConfig, build
    from cgd.methods import parse_methods
    from cgd.problems import MATH_COLUMNS, ProblemsConfig

    options = parse_sets(sets)
    try:
        level_values = tuple(int(v) for v in split_list(levels))
    except ValueError:
        raise HarnessError(f"--levels takes comma-separated integers, got {levels!r}") from None
    problems = ProblemsConfig(
        source=source,
        n=n_problems,
        n_val=n_val,
        seed=seed,
        subjects=split_list(subjects),
        levels=level_values,
        drop_near_duplicates=not keep_near_duplicates,
        columns={**MATH_COLUMNS, **options["columns"]},
    )
    cfg = BuildConfig(
        methods=parse_methods(methods),
        model=model,
        backend=backend,
        probe_max_new_tokens=probe_max_new_tokens,
        teacher=teacher,
        teacher_options=options["teacher"],
        teacher_file=str(teacher_file) if teacher_file else None,
        problems=problems,
        seed=seed,
    )
    target = common.new_run_dir("data", run_dir)
    for stage, record in build(target, cfg).items():
        info = record.get("info", {})
        typer.echo(
            f"{stage:<24} {info.get('wall_seconds', 0):>8.1f}s  "
            + " ".join(f"{k}={v}" for k, v in info.items() if k != "wall_seconds")
        )
    typer.echo(f"datasets in {target / 'data'}")
