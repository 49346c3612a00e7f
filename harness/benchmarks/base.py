"""A benchmark is one object: its metadata, data, prompt, answer extraction, scorer, drift hooks
and lm-eval task definition. `register(bench)` makes it exist everywhere: the registry lookups,
`harness eval` (through the task YAML `harness.benchmarks.tasks` writes from it), the records and
the drift analysis. The families (math, choice, code, ifeval) are subclasses in their own modules.

Checkers are imported inside methods: they run in worker processes and sandboxes, and a task
that never scores (e.g. listing tasks) should not pay for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from harness import data
from harness.checkers.reasoning import DEFAULT_END_MARKER as DEFAULT_REASONING_END
from harness.checkers.reasoning import AnswerPart, split_answer
from harness.errors import HarnessError

Row = dict[str, Any]
# lm-eval's task YAMLs name their functions here; `hooks` resolves `<hook>__<task>` to the object's.
HOOKS_MODULE = "harness.benchmarks.hooks"


@dataclass(frozen=True)
class Score:
    """One response's verdict (`value`: the metrics lm-eval aggregates) and the answer it was
    extracted to (`answer`: the records' `extracted`), computed together, as Inspect's Score."""

    value: dict[str, Any]
    answer: Any = None


@dataclass(frozen=True)
class Hook:
    """A function reference in a task YAML: `!function harness.benchmarks.hooks.<name>__<task>`."""

    name: str


@dataclass(frozen=True)
class DriftExtra:
    """A benchmark's own drift measure (harness.drift): per record a share in [0, 1], given by
    `Benchmark.drift_measures`; per model its mean, compared against base like the library's."""

    name: str  # the quantity: comparisons, tracker tags, the drift CSV's `<name>_pct`
    label: str  # in prose and findings ("<label> on <task>")
    heading: str  # the drift table's column, "<heading> %"
    rise_is_better: bool = True  # False: a significant change reads "higher" / "lower"


@dataclass(frozen=True)
class Benchmark:
    name: str  # the lm-eval task name (tasks/<name>/<name>.yaml)
    output_type: str  # "generate_until" | "multiple_choice"
    metric: str  # headline metric, as lm-eval names it in results[task]["<metric>,none"]
    dataset: str  # key of harness.data.LOADERS (or the name `loader` reads)
    general: bool  # True: general ability (forgetting analysis); False: math reasoning
    # Generative tasks are chat prompts. Log-likelihood tasks score raw text without the chat
    # template, which is how lm-eval and the Open LLM Leaderboard measure published MC numbers.
    chat: bool
    max_new_tokens: int = 0  # 0: no generation (log-likelihood scoring)
    redact: bool = False  # GPQA: per-sample records keep ids, letters and metrics only
    counters: tuple[str, ...] = ()  # status counters reported as their own metrics
    size: int = 0  # items in the full test set (TruthfulQA: the 2021 release; see n_items)
    binary: bool = True  # per-item scores are 0/1 verdicts (False: continuous, TruthfulQA-MC2)
    extra_metrics: tuple[str, ...] = ()  # reported as their own columns next to the headline
    # The rows, when they come from elsewhere than harness.data.LOADERS (a local file, say).
    loader: Callable[[], list[Row]] | None = None

    # Drift hooks (harness.drift). The pattern that finds a final answer in a response (None: the
    # task has no answer format); whether the checker's own extraction says "parseable" (HumanEval's
    # runs any text as a program, so its pattern decides); its own measures, whose values per
    # record `drift_measures` gives.
    answer_pattern: ClassVar[re.Pattern | None] = None
    extraction_decides_parseable: ClassVar[bool] = True
    drift_extras: ClassVar[tuple[DriftExtra, ...]] = ()
    # The task YAML's header comment.
    about: ClassVar[str] = ""

    @property
    def category(self) -> str:
        return "general" if self.general else "reasoning"

    @property
    def generative(self) -> bool:
        return self.output_type == "generate_until"

    def n_items(self, limit: int | None = None, **metadata: Any) -> int:
        """How many items an evaluation scores: the full set, or `limit` if smaller."""
        return min(self.size, limit) if limit else self.size

    # ------------------------------------------------------------ data

    def rows(self, **metadata: Any) -> list[Row]:
        if self.loader is None:
            return data.load(self.dataset)
        rows = self.loader()
        if not rows:
            raise HarnessError(f"benchmark {self.name!r} has no rows: check its data file")
        return rows

    def load_rows(self, **metadata: Any) -> list[Row]:
        """The docs. Generative docs also carry the scoring options (lm-eval hands process_results
        the doc only); metadata lm-eval passes that no option reads is ignored."""
        rows = self.rows(**metadata)
        if not self.generative:
            return rows
        options = self.doc_options(metadata)
        return [{**row, **options} for row in rows]

    def doc_options(self, metadata: dict[str, Any]) -> dict[str, Any]:
        return {"reasoning_end": str(metadata.get("reasoning_end", DEFAULT_REASONING_END))}

    def dataset_dict(self, **metadata: Any):
        """lm-eval `custom_dataset`: a DatasetDict with a "test" split."""
        return data.as_dataset_dict(self.load_rows(**metadata))

    # ------------------------------------------------------------ prompt, answer, score

    def prompt(self, doc: Row) -> str:
        raise NotImplementedError

    def gold(self, doc: Row) -> Any:
        return None

    def extract(self, doc: Row, text: str) -> Any:
        """The answer a generative response's answer part gives (the records' `extracted`)."""
        return None

    def choice_answer(self, doc: Row, results: Sequence[Any]) -> Any:
        """A multiple-choice item's answer from its per-choice log-likelihoods."""
        return None

    def score(self, doc: Row, response: str | None) -> Score:
        raise NotImplementedError

    def process_results(self, doc: Row, results: Sequence[Any]) -> dict[str, Any]:
        """lm-eval's scorer: the Score's metrics; the Score itself goes to `kept_scores`' keeper."""
        score = self.score(doc, results[0])
        if _KEEPERS:
            _KEEPERS[-1][score_key(self.name, doc, results[0])] = score
        return score.value

    def record_fields(self, doc: Row, response: Any, score: Score | None = None) -> dict[str, Any]:
        """item_id, gold and extracted answer for one per-sample record.

        `response` is the generated text for generative tasks, and the per-choice results
        (loglikelihoods or lm-eval's (loglikelihood, is_greedy) pairs) for multiple-choice ones.
        Generative tasks also record `thinking`: how the response's thinking ended
        (harness.checkers.reasoning). Their answer is `score.answer`, the one the verdict came
        from; without a score, `extract` on the answer part (an unclosed thinking extracts nothing).
        """
        fields: dict[str, Any] = {"item_id": item_id(doc), "gold": None, "extracted": None}
        if self.generative:
            part = answer_part(doc, response)
            fields["thinking"] = part.thinking
            fields["gold"] = self.gold(doc)
            if score is not None:
                fields["extracted"] = score.answer
            elif part.text is not None:
                fields["extracted"] = self.extract(doc, part.text)
        else:
            fields["gold"] = self.gold(doc)
            fields["extracted"] = self.choice_answer(doc, response or ())
        return fields

    # ------------------------------------------------------------ contamination

    def contamination_texts(self, row: Row) -> list[str]:
        """The texts of one test item that training data must not contain (harness.contamination)."""
        return [row["problem"], row.get("solution") or ""]

    # ------------------------------------------------------------ drift

    def drift_measures(self, record: dict) -> dict[str, float]:
        """Values of this task's own drift measures (`drift_extras`, by name) for one record."""
        return {}

    # ------------------------------------------------------------ lm-eval task

    def header(self) -> str:
        """The task YAML's header comment."""
        return self.about

    def task_config(self) -> dict[str, Any]:
        """The lm-eval task definition, as `harness.benchmarks.tasks` writes it to YAML."""
        config: dict[str, Any] = {
            "task": self.name,
            "custom_dataset": Hook("load"),
            "test_split": "test",
            "output_type": self.output_type,
            "doc_to_text": Hook("doc_to_text"),
            "doc_to_target": self.target_field(),
        }
        if self.generative:
            config["process_results"] = Hook("process_results")
            config["generation_kwargs"] = {
                "until": [],
                "do_sample": False,
                "temperature": 0.0,
                "max_gen_toks": self.max_new_tokens,
            }
        config["metric_list"] = self.metric_list()
        config["metadata"] = {"version": 1.0}
        return config

    def target_field(self) -> Any:
        return "gold"

    def metric_list(self) -> list[dict[str, Any]]:
        names = (self.metric, *self.extra_metrics, *self.counters)
        return [metric(m, higher_is_better=m not in self.counters) for m in dict.fromkeys(names)]


def metric(name: str, higher_is_better: bool = True, aggregation: Any = "mean") -> dict[str, Any]:
    return {"metric": name, "aggregation": aggregation, "higher_is_better": higher_is_better}


def flag(condition: bool) -> float:
    return 1.0 if condition else 0.0


def answer_part(doc: Row, response: str | None) -> AnswerPart:
    """What the checkers score: the text after the thinking (harness.checkers.reasoning)."""
    return split_answer(response, doc.get("reasoning_end", DEFAULT_REASONING_END))


def item_id(doc: Row) -> str:
    """A benchmark item's id as the records carry it; stable across runs, so shards are assigned by it."""
    return str(doc["id"])


def loglikelihoods(results: Sequence[Any]) -> list[float]:
    # lm-eval hands each choice's result as (loglikelihood, is_greedy).
    return [float(r[0]) if isinstance(r, (tuple, list)) else float(r) for r in results]


def argmax(results: Sequence[Any]) -> int | None:
    if not results:
        return None
    lls = loglikelihoods(results)
    return max(range(len(lls)), key=lls.__getitem__)


# ---------------------------------------------------------------- scores kept for the records

# lm-eval hands process_results' metrics on and drops everything else, so the Score (and the answer
# its verdict came from) reaches the records through the innermost `kept_scores`.
_KEEPERS: list[dict[tuple[str, str, Any], Score]] = []


@contextmanager
def kept_scores() -> Iterator[dict[tuple[str, str, Any], Score]]:
    """While open, every Score `process_results` computes, by `score_key`."""
    scores: dict[tuple[str, str, Any], Score] = {}
    _KEEPERS.append(scores)
    try:
        yield scores
    finally:
        _KEEPERS.remove(scores)


def score_key(task: str, doc: Row, response: Any) -> tuple[str, str, Any]:
    return (task, item_id(doc), response)


# ---------------------------------------------------------------- the registry

BENCHMARKS: dict[str, Benchmark] = {}


def register(bench: Benchmark) -> Benchmark:
    """Make `bench` a benchmark everywhere (the registry's order is "all"'s order)."""
    if bench.name in BENCHMARKS and BENCHMARKS[bench.name] != bench:
        raise HarnessError(f"benchmark {bench.name!r} is already registered")
    BENCHMARKS[bench.name] = bench
    return bench


def get(task: str) -> Benchmark:
    try:
        return BENCHMARKS[task]
    except KeyError:
        raise HarnessError(f"unknown benchmark {task!r}; valid: {', '.join(BENCHMARKS)}") from None
