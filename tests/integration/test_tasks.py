"""The lm-eval task definitions in tasks/: discovery, prompts, requests and scoring on real docs.

Gold answers go through each task's process_results and must score 1; wrong ones must score 0.
GPQA assertions compare letters, counts and booleans only, never text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import registry
from harness.errors import HarnessError
from harness.paths import tasks_dir
from harness.registry import BENCHMARKS

LM_EVAL_TASKS = Path(__import__("lm_eval").__file__).parent / "tasks"
GENERATIVE = sorted(n for n, b in BENCHMARKS.items() if b.output_type == "generate_until")
MULTIPLE_CHOICE = sorted(n for n, b in BENCHMARKS.items() if b.output_type == "multiple_choice")
FIRST = 3  # docs per task fed through scoring


def _manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata or None)


@pytest.fixture(scope="module")
def tasks(data_dir):
    return _manager().load(sorted(BENCHMARKS))["tasks"]


def _docs(task, n=FIRST):
    docs = task.test_docs()
    return [docs[i] for i in range(n)]


def _headline(task, doc, response):
    return task.process_results(doc, [response])[BENCHMARKS[task.config.task].metric]


# ---------------------------------------------------------------- registry ---------------------


def test_task_manager_finds_every_registered_task():
    assert set(_manager().all_tasks) == set(BENCHMARKS)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_yaml_agrees_with_registry(name):
    bench = BENCHMARKS[name]
    text = (tasks_dir() / name / f"{name}.yaml").read_text()
    config = yaml.load(text, Loader=_TagTolerantLoader)
    assert config["task"] == name
    assert config["output_type"] == bench.output_type
    assert config["test_split"] == "test" and "version" in config["metadata"]
    metrics = [m["metric"] for m in config["metric_list"]]
    assert metrics[0] == bench.metric
    assert set(bench.counters) <= set(metrics)
    if bench.output_type == "generate_until":
        gen = config["generation_kwargs"]
        assert gen["max_gen_toks"] == bench.max_new_tokens
        assert gen["do_sample"] is False and gen["temperature"] == 0 and gen["until"] == []
        assert bench.chat
    else:
        assert not bench.chat and bench.max_new_tokens == 0


def test_registry_categories():
    general = {n for n, b in BENCHMARKS.items() if b.general}
    assert general == {
        "humaneval",
        "ifeval",
        "gpqa_diamond",
        "gpqa_diamond_cot",
        "truthfulqa_mc1",
        "truthfulqa_mc2",
    }
    assert {n for n, b in BENCHMARKS.items() if b.redact} == {"gpqa_diamond", "gpqa_diamond_cot"}
    assert BENCHMARKS["amc23"].category == "reasoning"


def test_resolve_benchmarks():
    assert registry.resolve_benchmarks("all") == list(BENCHMARKS)
    assert registry.resolve_benchmarks(" ifeval, amc23,ifeval ") == ["ifeval", "amc23"]
    with pytest.raises(HarnessError) as err:
        registry.resolve_benchmarks("amc23,gsm8k")
    assert "gsm8k" in str(err.value) and "truthfulqa_mc2" in str(err.value)
    with pytest.raises(HarnessError):
        registry.resolve_benchmarks(" , ")


# ---------------------------------------------------------------- generative tasks ------------


@pytest.mark.parametrize("name", ["amc23", "aime24", "math500"])
def test_math_prompt_and_scoring(tasks, name):
    task = tasks[name]
    for doc in _docs(task):
        prompt = task.doc_to_text(doc)
        assert doc["problem"].strip() in prompt and "\\boxed{}" in prompt
        scores = task.process_results(doc, [f"So the answer is $\\boxed{{{doc['gold']}}}$."])
        assert scores == {"exact_match": 1.0, "timeout": 0.0, "no_answer": 0.0, "unparsable_gold": 0.0}
        assert _headline(task, doc, "The answer is \\boxed{-987654}.") == 0.0
        assert task.process_results(doc, ["I am not sure."])["no_answer"] == 1.0


def test_humaneval_prompt_and_scoring(tasks):
    task = tasks["humaneval"]
    for doc in _docs(task):
        prompt = task.doc_to_text(doc)
        assert doc["prompt"] in prompt and "```python" in prompt
        gold = f"Here it is:\n```python\n{doc['prompt']}{doc['canonical_solution']}```\n"
        assert task.process_results(doc, [gold]) == {"pass@1": 1.0, "timeout": 0.0, "no_answer": 0.0}
        wrong = f"```python\n{doc['prompt']}    return None\n```"
        assert _headline(task, doc, wrong) == 0.0


def test_gpqa_cot_prompt_and_scoring(tasks):
    task = tasks["gpqa_diamond_cot"]
    for doc in _docs(task):
        prompt = task.doc_to_text(doc)
        well_formed = (
            doc["question"] in prompt
            and "The answer is (X)" in prompt
            and all(f"({x}) {c}" in prompt for x, c in zip("ABCD", doc["choices"]))
        )
        assert well_formed
        gold, other = doc["gold_letter"], "B" if doc["gold_letter"] == "A" else "A"
        assert task.process_results(doc, [f"Reasoning.\nThe answer is ({gold})"]) == {
            "exact_match": 1.0,
            "no_answer": 0.0,
        }
        assert _headline(task, doc, f"The answer is ({other})") == 0.0
        assert task.process_results(doc, [""])["no_answer"] == 1.0
        assert task.doc_to_target(doc) == gold


def test_ifeval_prompt_and_scoring(tasks):
    task = tasks["ifeval"]
    for doc in _docs(task):
        assert task.doc_to_text(doc) == doc["prompt"]
        scores = task.process_results(doc, [""])  # an empty reply follows no instruction
        n = len(doc["instruction_id_list"])
        assert scores["prompt_level_strict_acc"] is False
        assert scores["inst_level_strict_acc"] == [False] * n
        assert scores["inst_level_loose_acc"] == [False] * n
    no_comma = next(d for d in task.test_docs() if list(d["instruction_id_list"]) == ["punctuation:no_comma"])
    assert task.process_results(no_comma, ["A reply without that punctuation mark."]) == {
        "prompt_level_strict_acc": True,
        "inst_level_strict_acc": [True],
        "prompt_level_loose_acc": True,
        "inst_level_loose_acc": [True],
        "no_answer": 0.0,
    }
    assert _headline(task, no_comma, "One, two") is False


def test_ifeval_instruction_level_aggregation(tasks):
    agg = tasks["ifeval"]._aggregation_list["inst_level_strict_acc"]
    assert agg([[True, False], [True]]) == pytest.approx(2 / 3)
    assert tasks["ifeval"]._aggregation_list["prompt_level_strict_acc"]([True, False]) == 0.5


# ---------------------------------------------------------------- multiple-choice tasks --------


def _lls(n, best):
    return [(-1.0 if i == best else -20.0, i == best) for i in range(n)]


@pytest.mark.parametrize("name", MULTIPLE_CHOICE)
def test_mc_requests_and_scoring(tasks, name):
    task = tasks[name]
    task.build_all_requests(limit=FIRST, rank=0, world_size=1)
    docs = _docs(task)
    for doc_id, doc in enumerate(docs):
        choices = task.doc_to_choice(doc)
        requests = [i for i in task.instances if i.doc_id == doc_id]
        assert [i.request_type for i in requests] == ["loglikelihood"] * len(choices)
        assert [i.args[1] for i in requests] == [f" {c}" for c in choices]
        assert all(i.args[0] == task.doc_to_text(doc) for i in requests)
        gold = task.doc_to_target(doc)
        wrong = (gold + 1) % len(choices)
        if name == "truthfulqa_mc2":
            labels = doc["mc2_targets"]["labels"]
            equal = task.process_results(doc, [(-2.0, False)] * len(choices))["acc"]
            assert equal == pytest.approx(sum(labels) / len(labels))
            wrong = labels.index(0)
            assert task.process_results(doc, _lls(len(choices), gold))["acc"] > 0.9
            assert task.process_results(doc, _lls(len(choices), wrong))["acc"] < 0.1
        else:
            assert task.process_results(doc, _lls(len(choices), gold))["acc"] == 1.0
            assert task.process_results(doc, _lls(len(choices), wrong))["acc"] == 0.0


def test_gpqa_mc_matches_lm_eval_prompt(tasks):
    task = tasks["gpqa_diamond"]
    reference = yaml.load(
        (LM_EVAL_TASKS / "gpqa/zeroshot/_gpqa_zeroshot_yaml").read_text(), Loader=_TagTolerantLoader
    )
    assert task.doc_to_choice(task.test_docs()[0]) == reference["doc_to_choice"]
    for doc in _docs(task):
        fields = {"Question": doc["question"], **{f"choice{i + 1}": c for i, c in enumerate(doc["choices"])}}
        same = task.doc_to_text(doc) == _render(reference["doc_to_text"], fields)
        assert same
        assert "ABCD"[task.doc_to_target(doc)] == doc["gold_letter"]


def test_truthfulqa_matches_lm_eval_prompt(tasks):
    task = tasks["truthfulqa_mc1"]
    reference = yaml.safe_load((LM_EVAL_TASKS / "truthfulqa/truthfulqa_mc1.yaml").read_text())
    for doc in _docs(task):
        assert task.doc_to_text(doc) == _render(reference["doc_to_text"], doc)


# ---------------------------------------------------------------- metadata knobs ---------------


def test_metadata_selects_truthfulqa_version_and_gpqa_seed(tasks):
    other = _manager(truthfulqa_version="2025", gpqa_seed=7).load(["truthfulqa_mc2", "gpqa_diamond"])["tasks"]
    assert len(tasks["truthfulqa_mc2"].test_docs()) == 817
    assert len(other["truthfulqa_mc2"].test_docs()) == 790
    seed0 = [d["gold_letter"] for d in tasks["gpqa_diamond"].test_docs()]
    seed7 = [d["gold_letter"] for d in other["gpqa_diamond"].test_docs()]
    assert seed0 != seed7 and {d["seed"] for d in other["gpqa_diamond"].test_docs()} == {7}
    assert other["gpqa_diamond"].config.metadata["gpqa_seed"] == 7


# ---------------------------------------------------------------- per-sample fields ------------


def test_sample_fields(tasks):
    gpqa = tasks["gpqa_diamond"].test_docs()[0]
    fields = registry.get("gpqa_diamond").record_fields(gpqa, _lls(4, 2))
    assert fields == {"item_id": gpqa["id"], "gold": gpqa["gold_letter"], "extracted": "C"}
    fields = registry.get("gpqa_diamond_cot").record_fields(gpqa, "The answer is (D)")
    assert fields == {
        "item_id": gpqa["id"],
        "gold": gpqa["gold_letter"],
        "extracted": "D",
        "thinking": "none",
    }

    amc = tasks["amc23"].test_docs()[0]
    fields = registry.get("amc23").record_fields(amc, "\\boxed{12}")
    assert fields == {"item_id": str(amc["id"]), "gold": amc["gold"], "extracted": "12", "thinking": "none"}

    tqa = tasks["truthfulqa_mc2"].test_docs()[0]
    fields = registry.get("truthfulqa_mc2").record_fields(tqa, [-3.0, -1.0, -2.0])
    assert fields["extracted"] == 1 and fields["gold"] == [
        i for i, label in enumerate(tqa["mc2_targets"]["labels"]) if label
    ]
    assert registry.get("truthfulqa_mc1").record_fields(tqa, [(-1.0, True)])["gold"] == 0

    ifeval = tasks["ifeval"].test_docs()[0]
    assert registry.get("ifeval").record_fields(ifeval, "text") == {
        "item_id": str(ifeval["key"]),
        "gold": None,
        "extracted": None,
        "instruction_id_list": ifeval["instruction_id_list"],
        "thinking": "none",
    }

    he = tasks["humaneval"].test_docs()[0]
    fields = registry.get("humaneval").record_fields(he, f"```python\n{he['prompt']}    pass\n```")
    assert fields["item_id"] == "HumanEval/0" and "def " in fields["extracted"]


def test_sample_fields_read_the_answer_after_the_thinking(tasks):
    amc = tasks["amc23"].test_docs()[0]
    fields = registry.get("amc23").record_fields(amc, "<think>maybe \\boxed{3}</think> so \\boxed{12}")
    assert (fields["extracted"], fields["thinking"]) == ("12", "closed")
    fields = registry.get("amc23").record_fields(amc, "<think>maybe \\boxed{3}, still thinking")
    assert (fields["extracted"], fields["thinking"]) == (None, "unclosed")
    # The Qwen grader's own extraction: no box, so the text after "the answer is".
    fields = registry.get("amc23").record_fields({**amc, "math_grader": "qwen"}, "So the answer is 12")
    assert fields["extracted"] == "12"


# Every generative task, with a response whose thinking holds a right-looking answer but never ends.
@pytest.mark.parametrize("name", ["amc23", "math500", "humaneval", "gpqa_diamond_cot", "ifeval"])
def test_unclosed_thinking_is_no_answer(tasks, name):
    task = tasks[name]
    doc = _docs(task)[0]
    assert doc["reasoning_end"] == "</think>"
    scores = task.process_results(doc, ["<think>The answer is (A). \\boxed{1}"])
    assert scores["no_answer"] == 1.0
    assert not scores[BENCHMARKS[name].metric]


@pytest.mark.parametrize("name", ["amc23", "humaneval", "gpqa_diamond_cot", "ifeval"])
def test_only_the_text_after_the_thinking_is_scored(tasks, name):
    task = tasks[name]
    doc = _docs(task)[0]
    if name == "amc23":
        right, wrong = f"\\boxed{{{doc['gold']}}}", "\\boxed{-987654}"
    elif name == "humaneval":
        right = f"```python\n{doc['prompt']}{doc['canonical_solution']}```"
        wrong = f"```python\n{doc['prompt']}    return None\n```"
    elif name == "gpqa_diamond_cot":
        right = f"The answer is ({doc['gold_letter']})"
        wrong = f"The answer is ({'B' if doc['gold_letter'] == 'A' else 'A'})"
    else:
        doc = next(d for d in task.test_docs() if list(d["instruction_id_list"]) == ["punctuation:no_comma"])
        right, wrong = "No commas here.", "One, two"
    metric = BENCHMARKS[name].metric
    assert task.process_results(doc, [f"<think>{wrong}</think>{right}"])[metric]
    assert not task.process_results(doc, [f"<think>{right}</think>{wrong}"])[metric]
    assert not task.process_results(doc, [f"{right}</think>{wrong}"])[metric]


def test_math_grader_both_scores_each_grader(tasks):
    task = tasks["amc23"]
    doc = {**_docs(task)[0], "math_grader": "both"}
    scores = task.process_results(doc, [f"\\boxed{{{doc['gold']}}}"])
    assert scores["exact_match"] == scores["math_verify_exact_match"] == scores["qwen_exact_match"] == 1.0
    assert registry.grader_verdicts(scores) == {"math-verify": True, "qwen": True}
    # A percentage reading only the Qwen grader accepts: the headline stays math-verify's.
    doc = {**doc, "gold": "0.5"}
    scores = task.process_results(doc, ["\\boxed{50}"])
    assert (scores["exact_match"], scores["math_verify_exact_match"], scores["qwen_exact_match"]) == (0, 0, 1)
    scores = task.process_results({**doc, "math_grader": "qwen"}, ["\\boxed{50}"])
    assert scores["exact_match"] == 1.0 and "qwen_exact_match" not in scores
    assert registry.grader_verdicts(scores) is None


def test_math_grader_reaches_the_docs():
    rows = registry.get("aime24").load_rows(math_grader="qwen", reasoning_end="")
    assert {(r["math_grader"], r["reasoning_end"]) for r in rows} == {("qwen", "")}
    assert "math_grader" not in registry.get("ifeval").load_rows()[0]
    with pytest.raises(HarnessError, match="math_grader"):
        registry.get("aime24").load_rows(math_grader="sympy")


# ---------------------------------------------------------------- helpers -----------------------


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads task YAML without resolving `!function` tags (they need lm-eval's own loader)."""


_TagTolerantLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _render(template, doc):
    from lm_eval.utils import apply_template

    return apply_template(template, doc)
