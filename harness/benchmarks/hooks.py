"""The functions lm-eval's task YAMLs name: `!function harness.benchmarks.hooks.<hook>__<task>`
resolves (module `__getattr__`) to that registered benchmark's method, so a task file holds no code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.benchmarks.base import get
from harness.benchmarks.ifeval import instruction_level_mean


def _load(task: str) -> Callable:
    def load(**metadata: Any):
        return get(task).dataset_dict(**metadata)

    return load


def _doc_to_text(task: str) -> Callable:
    def doc_to_text(doc: dict) -> str:
        return get(task).prompt(doc)

    return doc_to_text


def _doc_to_target(task: str) -> Callable:
    def doc_to_target(doc: dict) -> Any:
        return get(task).target(doc)

    return doc_to_target


def _process_results(task: str) -> Callable:
    def process_results(doc: dict, results: list) -> dict:
        return get(task).process_results(doc, results)

    return process_results


def _agg_inst_level_acc(task: str) -> Callable:
    return instruction_level_mean


HOOKS = {
    "load": _load,
    "doc_to_text": _doc_to_text,
    "doc_to_target": _doc_to_target,
    "process_results": _process_results,
    "agg_inst_level_acc": _agg_inst_level_acc,
}


def __getattr__(name: str) -> Callable:
    hook, sep, task = name.partition("__")
    if not sep or hook not in HOOKS or not task:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    get(task)  # an unknown task is one clear line, not a failure inside lm-eval
    return HOOKS[hook](task)
