"""lm-eval task YAMLs written from the benchmark objects: `python -m harness.benchmarks.tasks [DIR]`
(default: the repo's tasks/). tests/e2e/test_benchmark_registration.py fails when a checked-in YAML
differs from what its object writes."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from harness.benchmarks import BENCHMARKS, Benchmark
from harness.benchmarks.base import HOOKS_MODULE, Hook
from harness.io import atomic_write_text
from harness.paths import tasks_dir

GENERATED = (
    "Written by `python -m harness.benchmarks.tasks` from harness/benchmarks: edit the object, not this file."
)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # a hook named twice is written twice, not as an anchor
        return True


def task_yaml(bench: Benchmark) -> str:
    """The YAML text of `bench`'s lm-eval task."""

    def function(dumper: yaml.SafeDumper, hook: Hook) -> yaml.Node:
        return dumper.represent_scalar("!function", f"{HOOKS_MODULE}.{hook.name}__{bench.name}")

    _Dumper.add_representer(Hook, function)
    body = yaml.dump(
        bench.task_config(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
    header = "".join(f"# {line}\n" for line in (*bench.header().splitlines(), GENERATED))
    return header + body


def write_tasks(directory: Path, names: list[str] | None = None) -> list[Path]:
    """Write <directory>/<name>/<name>.yaml for the named (default: every registered) benchmark."""
    written = []
    for name in names or list(BENCHMARKS):
        path = directory / name / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, task_yaml(BENCHMARKS[name]))
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_tasks(Path(sys.argv[1]) if len(sys.argv) > 1 else tasks_dir()):
        print(written)
