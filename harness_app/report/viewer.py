"""The sample viewer's data: every benchmark item with each model's response, verdict and answer.

The page embeds this as one JSON blob and renders a page of items at a time (viewer.js), so a full
run (9 benchmarks x 4 models, thousands of responses) costs one JSON.parse, not thousands of DOM
nodes. Flags are computed here with the detectors the drift analysis uses (the CGD study's
critique-style measure, cgd/critique_style.py, and the library's final-answer detector), so
"critique-style" and "no answer" in the viewer mean what they mean in the drift table.

Shape (short keys: the blob is most of a large page's bytes):
    {"models": [label, ...],
     "tasks": [{"task", "metric", "redacted", "math", "items": [
         {"id", "p": prompt, "g": gold, "m": {label: {"v": verdict, "x": extracted, "r": response,
                                                       "c": 1 if critique-style, "n": 1 if no answer}}}]}]}
`math`: the benchmark's texts are LaTeX (the math benchmarks), which the page renders with KaTeX.
Absent fields are left out. Redacted benchmarks (GPQA) keep ids, letters and verdicts only, whatever
their records hold.
"""

from __future__ import annotations

import json
from importlib import resources

from cgd.critique_style import is_critique
from harness import drift
from harness.registry import BENCHMARKS
from harness.rundata import MATH_TASKS, RunData, item_id, natural_key

# Fields a redacted benchmark's record may show: no question, option or response text.
_TEXT_FIELDS = ("p", "r")


def passes(verdict: float | None) -> bool | None:
    """The verdict as pass/fail: 0/1 verdicts as they are, continuous scores (TruthfulQA-MC2) at 0.5.

    The viewer's "flipped" filter compares these, so a continuous score moving by 0.001 is no flip."""
    return None if verdict is None else verdict >= 0.5


def _verdict(record: dict, metric: str) -> float | None:
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def no_answer(task: str, record: dict) -> bool:
    """No scorable answer: the checker said so, or the drift detector finds no final-answer format."""
    if (record.get("metrics") or {}).get("no_answer") == 1:
        return True
    response = record.get("response") if isinstance(record.get("response"), str) else None
    return drift.has_final_answer(task, response, record.get("extracted", drift.NO_EXTRACTION)) is False


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _entry(task: str, record: dict, metric: str) -> dict:
    entry: dict[str, object] = {}
    verdict = _verdict(record, metric)
    if verdict is not None:
        entry["v"] = round(verdict, 4)
    if (extracted := _text(record.get("extracted"))) is not None:
        entry["x"] = extracted
    response = record.get("response")
    if isinstance(response, str):
        entry["r"] = response
        if is_critique(response):
            entry["c"] = 1
    if no_answer(task, record):
        entry["n"] = 1
    return entry


def task_items(run: RunData, task: str) -> list[dict]:
    """One entry per item of `task`, models side by side, in natural id order."""
    metric = run.headline(task)
    redacted = task in BENCHMARKS and BENCHMARKS[task].redact
    items: dict[str, dict] = {}
    for label in run.labels:
        for record in run.samples(label, task):
            key = item_id(record)
            item = items.setdefault(key, {"id": key, "m": {}})
            # The prompt and gold are the item's, the same for every model: kept once.
            if "p" not in item and isinstance(record.get("prompt"), str):
                item["p"] = record["prompt"]
            if "g" not in item and record.get("gold") is not None:
                item["g"] = _text(record["gold"])
            item["m"][label] = _entry(task, record, metric)
    if redacted:
        for item in items.values():
            item.pop("p", None)
            for entry in item["m"].values():
                for field in _TEXT_FIELDS:
                    entry.pop(field, None)
                entry.pop("c", None)
    return [items[k] for k in sorted(items, key=natural_key)]


def sample_data(run: RunData) -> dict:
    tasks = []
    for task in run.tasks:
        items = task_items(run, task)
        if items:
            redacted = task in BENCHMARKS and BENCHMARKS[task].redact
            tasks.append(
                {
                    "task": task,
                    "metric": run.headline(task),
                    "redacted": redacted,
                    "math": task in MATH_TASKS and not redacted,
                    "items": items,
                }
            )
    return {"models": list(run.labels), "tasks": tasks}


def embed_json(data: object) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can close it or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def script() -> str:
    return resources.files("harness_app.report").joinpath("viewer.js").read_text(encoding="utf-8")
