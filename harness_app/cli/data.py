"""`harness data build`: training problems → student probe → teacher critiques → per-method datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from cgd.problems import ProblemsConfig
from cgd.teachers import TeacherConfig
from harness import layout
from harness.errors import HarnessError
from harness_app.cli import common

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
    teacher: str = common.field_option(TeacherConfig, "model", "--teacher"),
    teacher_file: Path | None = common.field_option(TeacherConfig, "file", "--teacher-file"),
    model: str = common.ModelOpt,
    backend: str = typer.Option(
        "hf", "--backend", help="Generation backend of the probed student: hf or vllm."
    ),
    n_problems: int | None = common.field_option(ProblemsConfig, "n_problems", "--n-problems"),
    n_val: int = common.field_option(ProblemsConfig, "n_val", "--n-val"),
    source: str = common.field_option(ProblemsConfig, "source", "--source"),
    subjects: str | None = typer.Option(None, "--subjects", help="Comma-separated MATH subjects to keep."),
    levels: str | None = typer.Option(None, "--levels", help="Comma-separated levels to keep, e.g. 1,2,3."),
    keep_near_duplicates: bool = typer.Option(
        False, "--keep-near-duplicates", help="Keep the 14 math_train near-copies of MATH-500 problems."
    ),
    probe_max_new_tokens: int = common.field_option(
        ProblemsConfig, "probe_max_new_tokens", "--probe-max-new-tokens"
    ),
    seed: int = common.SeedOpt,
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Run directory (default runs/<stamp>-data)."),
    sets: list[str] | None = SetOpt,
) -> None:
    """Build the training datasets of METHODS in the run dir; finished stages are skipped."""
    from cgd.methods import parse_methods
    from cgd.pipeline import BuildConfig, build

    options = parse_sets(sets)
    try:
        level_values = tuple(int(v) for v in split_list(levels))
    except ValueError:
        raise HarnessError(f"--levels takes comma-separated integers, got {levels!r}") from None
    problems = ProblemsConfig(
        source=source,
        n_problems=n_problems,
        n_val=n_val,
        seed=seed,
        subjects=list(split_list(subjects)),
        levels=list(level_values),
        drop_near_duplicates=not keep_near_duplicates,
        columns=options["columns"],
        probe_max_new_tokens=probe_max_new_tokens,
    )
    cfg = BuildConfig(
        methods=parse_methods(methods),
        model=model,
        backend=backend,
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
    typer.echo(f"datasets in {target / layout.DATA}")
