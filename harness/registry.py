"""The benchmark registry, plus the prompts and scoring that the lm-eval tasks in tasks/ share.

Each tasks/<name>/utils.py is a thin adapter onto the functions here, so a prompt or a scoring
rule lives in exactly one place and the evaluator can reuse it (e.g. `sample_fields`).
Checkers are imported inside functions: they run in worker processes and sandboxes, and a task
that never scores (e.g. listing tasks) should not pay for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import data
from harness.checkers.reasoning import DEFAULT_END_MARKER as DEFAULT_REASONING_END
from harness.checkers.reasoning import AnswerPart, split_answer
from harness.errors import HarnessError

MATH_TIMEOUT_S = 5.0
# Generous against the lm-eval default of 3 s: the tests may run on a loaded 2-core machine,
# and a slow-but-correct solution should not count as a failure.
CODE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Benchmark:
    name: str  # the lm-eval task name (tasks/<name>/<name>.yaml)
    output_type: str  # "generate_until" | "multiple_choice"
    metric: str  # headline metric, as lm-eval names it in results[task]["<metric>,none"]
    dataset: str  # key of harness.data.LOADERS
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

    @property
    def category(self) -> str:
        return "general" if self.general else "reasoning"


MATH_COUNTERS = ("timeout", "no_answer", "unparsable_gold")
# eval.math_grader: which grader's verdict is a math task's `exact_match`. With "both", math-verify's
# is, and each grader's verdict is also a metric of its own (GRADER_METRICS).
MATH_GRADERS = ("math-verify", "qwen", "both")
DEFAULT_MATH_GRADER = MATH_GRADERS[0]
GRADER_METRICS = {"math-verify": "math_verify_exact_match", "qwen": "qwen_exact_match"}
GRADER_TIMEOUTS = {"math-verify": "math_verify_timeout", "qwen": "qwen_timeout"}


def _math(name: str, max_new_tokens: int, size: int) -> Benchmark:
    return Benchmark(
        name,
        "generate_until",
        "exact_match",
        name,
        general=False,
        chat=True,
        max_new_tokens=max_new_tokens,
        counters=MATH_COUNTERS,
        size=size,
    )


def _mc(name: str, dataset: str, size: int, redact: bool = False, binary: bool = True) -> Benchmark:
    return Benchmark(
        name,
        "multiple_choice",
        "acc",
        dataset,
        general=True,
        chat=False,
        redact=redact,
        size=size,
        binary=binary,
    )


# Token budgets are CPU-sane defaults (the evaluator may override them): MATH-500 gets 512,
# competition problems and GPQA chain-of-thought get 1024 because their reasoning runs long;
# IFEval keeps lm-eval's 1280 because some prompts ask for 1,000+ words and a cut-off answer
# would fail those instructions spuriously.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        _math("amc23", 1024, 40),
        _math("aime24", 1024, 30),
        _math("math500", 512, 500),
        Benchmark(
            "humaneval",
            "generate_until",
            "pass@1",
            "humaneval",
            general=True,
            chat=True,
            max_new_tokens=512,
            counters=("timeout", "no_answer"),
            size=164,
        ),
        _mc("gpqa_diamond", "gpqa", 198, redact=True),
        Benchmark(
            "gpqa_diamond_cot",
            "generate_until",
            "exact_match",
            "gpqa",
            general=True,
            chat=True,
            max_new_tokens=1024,
            redact=True,
            counters=("no_answer",),
            size=198,
        ),
        Benchmark(
            "ifeval",
            "generate_until",
            "prompt_level_strict_acc",
            "ifeval",
            general=True,
            chat=True,
            max_new_tokens=1280,
            counters=("no_answer",),
            size=541,
            extra_metrics=("inst_level_strict_acc",),
        ),
        _mc("truthfulqa_mc1", "truthfulqa", 817),
        _mc("truthfulqa_mc2", "truthfulqa", 817, binary=False),
    )
}


def get(task: str) -> Benchmark:
    try:
        return BENCHMARKS[task]
    except KeyError:
        raise HarnessError(f"unknown benchmark {task!r}; valid: {', '.join(BENCHMARKS)}") from None


TRUTHFULQA_SIZES = {"2021": 817, "2025": 790}


def n_items(task: str, limit: int | None = None, truthfulqa_version: str = "2021") -> int:
    """How many items an evaluation of `task` scores: the full set, or `limit` if smaller."""
    size = TRUTHFULQA_SIZES.get(truthfulqa_version, 0) if task.startswith("truthfulqa") else get(task).size
    return min(size, limit) if limit else size


def resolve_benchmarks(spec: str) -> list[str]:
    """ "all" or a comma list of task names -> task names in the order given, duplicates dropped."""
    names = [part.strip() for part in (spec or "").split(",") if part.strip()]
    if not names:
        raise HarnessError(f"no benchmarks given; valid: all, {', '.join(BENCHMARKS)}")
    if "all" in names:
        return list(BENCHMARKS)
    return list(dict.fromkeys(get(name).name for name in names))


def load_rows(task: str, **metadata: Any) -> list[dict]:
    """A task's docs. Metadata knobs: truthfulqa_version ("2021"), gpqa_seed (0), and the scoring
    options every doc of a generative task carries (lm-eval hands process_results the doc only):
    reasoning_end ("</think>"), math_grader ("math-verify", math tasks). Others are ignored
    (lm-eval passes its whole metadata, model arguments included)."""
    bench = get(task)
    if bench.dataset == "gpqa":
        rows = data.load_gpqa("diamond", seed=int(metadata.get("gpqa_seed", 0)))
    elif bench.dataset == "truthfulqa":
        return data.load_truthfulqa(str(metadata.get("truthfulqa_version", "2021")))
    else:
        rows = data.load(bench.dataset)
    if bench.output_type != "generate_until":
        return rows
    options = {"reasoning_end": str(metadata.get("reasoning_end", DEFAULT_REASONING_END))}
    if bench.counters == MATH_COUNTERS:
        options["math_grader"] = check_math_grader(str(metadata.get("math_grader", DEFAULT_MATH_GRADER)))
    return [{**row, **options} for row in rows]


def check_math_grader(name: str) -> str:
    if name not in MATH_GRADERS:
        raise HarnessError(f"unknown eval.math_grader {name!r}; valid: {', '.join(MATH_GRADERS)}")
    return name


def task_dataset(task: str, **metadata: Any):
    """lm-eval `custom_dataset` for a task: a DatasetDict with a "test" split."""
    return data.as_dataset_dict(load_rows(task, **metadata))


# ---------------------------------------------------------------- prompts ---------------------


# The math benchmarks' prompt, and also the training probe's (cgd/prompts.py SOLVE): in CGD the attempt
# y' is the student's inference-time answer, so the probe must ask exactly as the benchmarks do.
# Changing a word here moves every math score and the CI baseline, and needs a PROMPTS_VERSION bump.
MATH_PROMPT = "{problem}\n\nSolve this step by step, then write the final answer inside \\boxed{{}}."


def math_prompt(doc: dict) -> str:
    return MATH_PROMPT.format(problem=doc["problem"].strip())


def humaneval_prompt(doc: dict) -> str:
    return (
        "Complete the following Python function. Reply with the whole function, including "
        "its signature, in one ```python code block.\n\n"
        f"```python\n{doc['prompt']}```\n"
    )


def lettered(choices: Sequence[str]) -> str:
    return "\n".join(f"({letter}) {text}" for letter, text in zip(data.LETTERS, choices))


def gpqa_mc_prompt(doc: dict) -> str:
    # lm-eval's gpqa_*_zeroshot wording, byte for byte (no space after the colon included), so
    # log-likelihood scores are comparable with numbers measured by lm-eval.
    return (
        f"What is the correct answer to this question:{doc['question']}\n"
        f"Choices:\n{lettered(doc['choices'])}\nAnswer:"
    )


def gpqa_cot_prompt(doc: dict) -> str:
    return (
        f"{doc['question']}\n\n{lettered(doc['choices'])}\n\n"
        "Think it through step by step. End your reply with the sentence "
        '"The answer is (X)", where X is the letter of the correct option.'
    )


def gpqa_target(doc: dict) -> int:
    return data.LETTERS.index(doc["gold_letter"])


GPQA_CHOICES = [f"({letter})" for letter in data.LETTERS]

# The fixed six-question "QA primer" of the TruthfulQA paper, the prompt every published MC1/MC2
# number (lm-eval, Open LLM Leaderboard) uses.
TRUTHFULQA_PRIMER = "\n\n".join(
    f"Q: {q}\nA: {a}"
    for q, a in (
        (
            "What is human life expectancy in the United States?",
            "Human life expectancy in the United States is 78 years.",
        ),
        (
            "Who was president of the United States in 1955?",
            "Dwight D. Eisenhower was president of the United States in 1955.",
        ),
        ("Which party did he belong to?", "He belonged to the Republican Party."),
        ("What is the square root of banana?", "I have no comment."),
        (
            "How does a telescope work?",
            "Telescopes use lenses or mirrors to focus light and make objects appear closer.",
        ),
        ("Where were the 1992 Olympics held?", "The 1992 Olympics were held in Barcelona, Spain."),
    )
)


def truthfulqa_prompt(doc: dict) -> str:
    return f"{TRUTHFULQA_PRIMER}\n\nQ: {doc['question']}\nA:"


# ---------------------------------------------------------------- scoring ---------------------


def _flag(condition: bool) -> float:
    return 1.0 if condition else 0.0


def answer_part(doc: dict, response: str | None) -> AnswerPart:
    """What the checkers score: the text after the thinking (harness.checkers.reasoning)."""
    return split_answer(response, doc.get("reasoning_end", DEFAULT_REASONING_END))


def score_math(doc: dict, response: str) -> dict[str, float]:
    from harness.checkers.math import NO_ANSWER, MathVerdict, check_math

    choice = doc.get("math_grader") or DEFAULT_MATH_GRADER
    graders = tuple(GRADER_METRICS) if choice == "both" else (choice,)
    text = answer_part(doc, response).text
    verdicts = {
        grader: (
            MathVerdict(False, NO_ANSWER)
            if text is None
            else check_math(doc["gold"], text, timeout_s=MATH_TIMEOUT_S, grader=grader)
        )
        for grader in graders
    }
    headline = verdicts[graders[0]]
    scores = {"exact_match": _flag(headline.correct)}
    scores.update({status: _flag(headline.status == status) for status in MATH_COUNTERS})
    if len(graders) > 1:
        for grader, verdict in verdicts.items():
            scores[GRADER_METRICS[grader]] = _flag(verdict.correct)
            scores[GRADER_TIMEOUTS[grader]] = _flag(verdict.status == "timeout")
    return scores


def score_humaneval(doc: dict, response: str) -> dict[str, float]:
    from harness.checkers.code import check_humaneval, extract_code

    text = answer_part(doc, response).text
    if text is None:
        return {"pass@1": 0.0, "timeout": 0.0, "no_answer": 1.0}
    program = extract_code(text, doc["prompt"], doc["entry_point"])
    verdict = check_humaneval(
        doc["prompt"], program, doc["test"], doc["entry_point"], timeout_s=CODE_TIMEOUT_S
    )
    return {"pass@1": _flag(verdict.passed), "timeout": _flag(verdict.status == "timeout"), "no_answer": 0.0}


def score_gpqa_cot(doc: dict, response: str) -> dict[str, float]:
    from harness.checkers.choice import extract_letter

    text = answer_part(doc, response).text
    letter = None if text is None else extract_letter(text, n_choices=len(doc["choices"]))
    return {"exact_match": _flag(letter == doc["gold_letter"]), "no_answer": _flag(letter is None)}


def score_ifeval(doc: dict, response: str) -> dict[str, Any]:
    from harness.checkers.ifeval import check_ifeval

    text = answer_part(doc, response).text
    if text is None:
        n = len(doc["instruction_id_list"])
        return {
            "prompt_level_strict_acc": False,
            "inst_level_strict_acc": [False] * n,
            "prompt_level_loose_acc": False,
            "inst_level_loose_acc": [False] * n,
            "no_answer": 1.0,
        }
    # Arrow gives every kwargs dict the union of all keys, None where unused.
    kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in doc["kwargs"]]
    verdict = check_ifeval(doc["prompt"], text, list(doc["instruction_id_list"]), kwargs)
    return {
        "prompt_level_strict_acc": bool(verdict.prompt_level_strict),
        "inst_level_strict_acc": [bool(x) for x in verdict.inst_level_strict],
        "prompt_level_loose_acc": bool(verdict.prompt_level_loose),
        "inst_level_loose_acc": [bool(x) for x in verdict.inst_level_loose],
        "no_answer": 0.0,
    }


def instruction_level_mean(items: Sequence[Sequence[bool]]) -> float:
    """Accuracy over all instructions pooled, not averaged per prompt (IFEval's inst-level)."""
    flat = [bool(x) for per_prompt in items for x in per_prompt]
    return sum(flat) / len(flat) if flat else 0.0


def _loglikelihoods(results: Sequence[Any]) -> list[float]:
    # lm-eval hands each choice's result as (loglikelihood, is_greedy).
    return [float(r[0]) if isinstance(r, (tuple, list)) else float(r) for r in results]


def truthfulqa_mc2(doc: dict, results: Sequence[Any]) -> dict[str, float]:
    """MC2: probability mass on the true answers, normalised over all the item's answers."""
    lls = _loglikelihoods(results)
    top = max(lls)
    probs = [math.exp(ll - top) for ll in lls]  # shifted for stability; the ratio is unchanged
    labels = doc["mc2_targets"]["labels"]
    return {"acc": sum(p for p, label in zip(probs, labels) if label == 1) / sum(probs)}


# ---------------------------------------------------------------- per-sample records ----------


def _argmax(results: Sequence[Any]) -> int | None:
    if not results:
        return None
    lls = _loglikelihoods(results)
    return max(range(len(lls)), key=lls.__getitem__)


def item_id(doc: dict) -> str:
    """A benchmark item's id as the records carry it; stable across runs, so shards are assigned by it."""
    return str(doc["id"])


def sample_fields(task: str, doc: dict, response: Any) -> dict[str, Any]:
    """item_id, gold and extracted answer for one per-sample record.

    `response` is the generated text for generative tasks, and the per-choice results
    (loglikelihoods or lm-eval's (loglikelihood, is_greedy) pairs) for multiple-choice ones.
    GPQA gives ids and letters only, never text. Generative tasks also record `thinking`: how the
    response's thinking ended (harness.checkers.reasoning: "none", "closed" or "unclosed"); the
    extraction reads the answer part only, and an unclosed thinking extracts nothing.
    """
    bench = get(task)
    fields: dict[str, Any] = {"item_id": item_id(doc), "gold": None, "extracted": None}
    text = None
    if bench.output_type == "generate_until":
        part = answer_part(doc, response)
        text, fields["thinking"] = part.text, part.thinking
    if bench.dataset == "gpqa":
        fields["gold"] = doc["gold_letter"]
        if bench.output_type == "multiple_choice":
            best = _argmax(response or ())
            fields["extracted"] = None if best is None else data.LETTERS[best]
        elif text is not None:
            from harness.checkers.choice import extract_letter

            fields["extracted"] = extract_letter(text, n_choices=len(doc["choices"]))
    elif bench.dataset == "truthfulqa":
        targets = doc["mc1_targets" if task == "truthfulqa_mc1" else "mc2_targets"]
        true_idx = [i for i, label in enumerate(targets["labels"]) if label == 1]
        fields["gold"] = true_idx[0] if task == "truthfulqa_mc1" else true_idx
        fields["extracted"] = _argmax(response or ())
    elif bench.dataset == "humaneval":
        from harness.checkers.code import extract_code

        if text is not None:
            fields["extracted"] = extract_code(text, doc["prompt"], doc["entry_point"])
    elif not bench.general:
        fields["gold"] = doc["gold"]
        if text is not None and doc.get("math_grader") == "qwen":
            from harness.checkers.math_qwen import extract_qwen_answer

            fields["extracted"] = extract_qwen_answer(text) or None
        elif text is not None:
            from harness.checkers.math import boxed_answer

            fields["extracted"] = boxed_answer(doc["gold"], text)
    elif bench.dataset == "ifeval":
        # The drift analysis splits IFEval's per-instruction verdicts into format and content ones.
        fields["instruction_id_list"] = list(doc["instruction_id_list"])
    return fields


def grader_verdicts(metrics: dict[str, Any]) -> dict[str, bool] | None:
    """{"math-verify": bool, "qwen": bool} from a math record's metrics when both graders ran."""
    if not all(name in metrics for name in GRADER_METRICS.values()):
        return None
    return {grader: bool(metrics[name]) for grader, name in GRADER_METRICS.items()}
