"""The Teacher protocol, the model-backed teacher, and the annotation dataset file.

A teacher reads (problem x, attempt y') and writes a critique c, then reads (x, y', c) and writes a
refined answer ŷ. `annotate` runs both passes over a list of problems and returns one row per
problem; `save_annotations` / `load_annotations` are the file format users can reuse or bring.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cgd import prompts
from cgd.problems import question_id
from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl, iter_jsonl, read_json

SCHEMA = "cgd-annotations-v1"
# Columns a brought critique dataset must have; everything else is derived or optional.
REQUIRED_COLUMNS = ("question", "solution", "answer", "attempt", "critique", "refined")
# A model teacher asks again for an empty answer (a server glitch: content lost, a reasoning model
# that spent the budget elsewhere) and, when sampling, a truncated one; greedy truncation repeats.
TRIES = 3
# Problems without a usable attempt, critique or refinement are dropped and counted; past this
# fraction the data would no longer be the problems the run claims to train on, so the run stops.
MAX_FAILED_FRACTION = 0.05

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    text: str
    tokens: int | None  # completion tokens the teacher model generated; None for non-model teachers
    failed: str | None = None  # "empty" or "truncated": the text is not a usable answer


def failure_kind(text: str, finish_reason: str) -> str | None:
    """Why a generated text cannot be training material, or None when it can."""
    if not text.strip():
        return "empty"
    return "truncated" if finish_reason == "length" else None


class Teacher(Protocol):
    spec: str
    # Problems dropped per cause (empty_attempt, critique_empty, refined_truncated, ...) and retries.
    failures: Counter

    def describe(self) -> dict:
        """{"teacher": spec, "fingerprint": ..., "sampling": {...}}: recorded in the dataset metadata."""
        ...

    def critique(self, items: Sequence[dict]) -> list[Written]:
        """One critique per item (keys question, solution, answer, attempt), ending in a verdict line."""
        ...

    def refine(self, items: Sequence[dict], critiques: Sequence[str]) -> list[Written]:
        """One improved answer per item, ending with the final answer in \\boxed{}."""
        ...


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_new_tokens: int = 1024
    seed: int = 0


def typed_options(options: dict, allowed: dict[str, type], who: str) -> dict:
    """Options arrive as text from --set; cast the known ones and refuse the rest by name."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise HarnessError(
            f"unknown option {', '.join(unknown)} for the {who} teacher; "
            f"valid: {', '.join(allowed)}, temperature, max_new_tokens, seed"
        )
    try:
        return {k: allowed[k](v) for k, v in options.items()}
    except ValueError as exc:
        raise HarnessError(f"{who} teacher: bad option value ({exc})") from None


class ModelTeacher:
    """A teacher that is a generation backend: the critique and refine prompts of cgd.prompts."""

    def __init__(self, spec: str, backend, sampling: Sampling):
        self.spec = spec
        self.backend = backend
        self.sampling = sampling
        self.failures = Counter()

    def describe(self) -> dict:
        return {
            "teacher": self.spec,
            "fingerprint": self.backend.fingerprint,
            "sampling": vars(self.sampling).copy(),
            "failures": dict(self.failures),
        }

    def _generate(self, requests: list) -> list:
        from harness.backends.cache import CachedBackend

        if isinstance(self.backend, CachedBackend):
            # Only usable answers are committed: a glitch must not be served again to a later run.
            return self.backend.generate(requests, accept=lambda r: not failure_kind(r.text, r.finish_reason))
        return self.backend.generate(requests)

    def _ask(self, texts: list[str], what: str) -> list[Written]:
        from harness.backends.base import GenRequest

        s = self.sampling
        requests = [
            GenRequest(
                messages=({"role": "user", "content": t},),
                max_new_tokens=s.max_new_tokens,
                temperature=s.temperature,
                seed=s.seed,
            )
            for t in texts
        ]
        written: list[Written | None] = [None] * len(requests)
        todo = list(range(len(requests)))
        for attempt in range(TRIES):
            if attempt:
                self.failures["retried"] += len(todo)
                log.warning(
                    "teacher %s: %d %s(s) empty or cut at max_new_tokens=%d; asking again (%d/%d)",
                    self.spec, len(todo), what, s.max_new_tokens, attempt, TRIES - 1,
                )  # fmt: skip
            # The backend cache commits each answer as it arrives, so a failed run resumes where it stopped.
            results = self._generate([requests[i] for i in todo])
            for i, r in zip(todo, results):
                written[i] = Written(r.text, r.completion_tokens, failure_kind(r.text, r.finish_reason))
            # A greedy truncation comes back the same; an empty answer or a sampled one may not.
            todo = [
                i for i in todo if written[i].failed == "empty" or (written[i].failed and s.temperature > 0)
            ]
            if not todo:
                break
        return written  # type: ignore[return-value]

    def critique(self, items: Sequence[dict]) -> list[Written]:
        return self._ask(
            [prompts.critique_request(it["question"], it["attempt"]) for it in items], "critique"
        )

    def refine(self, items: Sequence[dict], critiques: Sequence[str]) -> list[Written]:
        return self._ask(
            [prompts.refine_request(it["question"], it["attempt"], c) for it, c in zip(items, critiques)],
            "refinement",
        )


def annotate(teacher: Teacher, items: list[dict], max_dropped: float = MAX_FAILED_FRACTION) -> list[dict]:
    """Critique then refine every item; each row also records what the math checker says.

    A problem whose attempt, critique or refinement is empty or truncated is no training material:
    it is dropped and counted in `teacher.failures`; past the `max_dropped` share the run stops."""
    from harness.checkers.math import check_many

    total, before = len(items), Counter(teacher.failures)
    # Only a student answer with no text at all (a lost answer, or EOS at once): whitespace or
    # repeats are what the student said, and critiquing them is the point of the method.
    items = [it for it in items if it["attempt"] != ""]
    teacher.failures["empty_attempt"] += total - len(items)
    refuse_if_too_many_failed(teacher, teacher.failures - before, total, max_dropped)
    critiques = teacher.critique(items)
    items, critiques = keep_usable(teacher, "critique", items, critiques)
    refuse_if_too_many_failed(teacher, teacher.failures - before, total, max_dropped)
    refined = teacher.refine(items, [c.text for c in critiques])
    items, critiques, refined = keep_usable(teacher, "refined", items, critiques, refined)
    refuse_if_too_many_failed(teacher, teacher.failures - before, total, max_dropped)
    verdicts = check_many(
        [(it["answer"], it["attempt"]) for it in items]
        + [(it["answer"], ref.text) for it, ref in zip(items, refined)]
    )
    rows = []
    for item, crit, ref, attempt_ok, refined_ok in zip(
        items, critiques, refined, verdicts, verdicts[len(items) :]
    ):
        rows.append(
            {
                **item,
                "attempt_correct": attempt_ok.correct,
                "critique": crit.text,
                "verdict": prompts.parse_verdict(crit.text),
                "refined": ref.text,
                "refined_correct": refined_ok.correct,
                "critique_tokens": crit.tokens,
                "refined_tokens": ref.tokens,
            }
        )
    return rows


def keep_usable(teacher: Teacher, column: str, items: list, *answers: list) -> tuple[list, ...]:
    """Drop the items whose last answer failed, counting each cause under `<column>_<kind>`."""
    last = answers[-1]
    for w in last:
        if w.failed:
            teacher.failures[f"{column}_{w.failed}"] += 1
    keep = [i for i, w in enumerate(last) if not w.failed]
    return tuple([seq[i] for i in keep] for seq in (items, *answers))


def refuse_if_too_many_failed(
    teacher: Teacher, failures: Counter, total: int, max_dropped: float = MAX_FAILED_FRACTION
) -> None:
    dropped = {k: n for k, n in failures.items() if k != "retried"}
    if sum(dropped.values()) > max_dropped * total:
        causes = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(dropped.items()))
        raise HarnessError(
            f"teacher {teacher.spec}: {sum(dropped.values())} of {total} problems have no usable "
            f"training text ({causes}) after up to {TRIES} tries each, more than "
            f"{max_dropped:.0%}; none of those answers was cached: check the server, raise "
            "teacher.max_new_tokens, sample (teacher.temperature > 0: a cut answer is asked again) or "
            "allow the drop (teacher.max_dropped_fraction), then run the same command again"
        )


def annotation_stats(rows: list[dict]) -> dict:
    from cgd.teachers.leakage import leakage_stats

    def rate(key: str) -> float | None:
        known = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(map(bool, known)) / len(known), 4) if known else None

    agree = [
        r["verdict"] == r["attempt_correct"]
        for r in rows
        if r.get("verdict") is not None and r.get("attempt_correct") is not None
    ]
    return {
        "rows": len(rows),
        "attempt_accuracy": rate("attempt_correct"),
        "refined_accuracy": rate("refined_correct"),
        "verdict_agreement": round(sum(agree) / len(agree), 4) if agree else None,
        "teacher_tokens": teacher_tokens(rows),
        "leakage": leakage_stats(rows),
    }


def teacher_tokens(rows: list[dict]) -> int:
    return sum((r.get("critique_tokens") or 0) + (r.get("refined_tokens") or 0) for r in rows)


def meta_path(path: Path) -> Path:
    return path.with_name(layout.meta_name(path.name))


def save_annotations(path: Path, rows: list[dict], description: dict) -> dict:
    stats = annotation_stats(rows)
    if description.get("failures") is not None:
        stats["failures"] = description["failures"]
    meta = {"schema": SCHEMA, **description, "prompts_version": prompts.PROMPTS_VERSION, "stats": stats}
    atomic_write_jsonl(path, rows)
    atomic_write_json(meta_path(path), meta)
    return meta


def load_annotations(path: str | Path) -> tuple[list[dict], dict]:
    """A critique dataset (ours, or one a user brings): rows with REQUIRED_COLUMNS, plus its metadata."""
    path = Path(path)
    rows = []
    for i, row in enumerate(iter_jsonl(path), 1):
        missing = [c for c in REQUIRED_COLUMNS if row.get(c) is None]
        if missing:
            raise HarnessError(
                f"{path}: row {i} lacks column {', '.join(missing)} "
                f"(a critique dataset needs {', '.join(REQUIRED_COLUMNS)})"
            )
        row["id"] = str(row["id"]) if row.get("id") is not None else question_id(row["question"])
        row["answer"] = str(row["answer"]).strip()
        rows.append(row)
    if not rows:
        raise HarnessError(f"{path}: no rows")
    meta = read_json(meta_path(path)) if meta_path(path).exists() else {"teacher": f"file:{path.name}"}
    return rows, meta
