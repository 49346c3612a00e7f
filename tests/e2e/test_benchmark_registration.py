"""A benchmark is one object: the checked-in task YAMLs are what the objects write, the scorer gives
the verdict and the extracted answer together, and a new benchmark registered in one call runs
through `harness eval` on the tiny model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness import drift, registry, rundata
from harness.benchmarks import BENCHMARKS, MathBenchmark, register
from harness.benchmarks.tasks import task_yaml, write_tasks
from harness.data import load_math_jsonl
from harness.paths import tasks_dir
from harness.plan import planned_shape


def test_every_task_yaml_is_what_its_object_writes():
    on_disk = {p.parent.name for p in tasks_dir().glob("*/*.yaml")}
    assert on_disk == set(BENCHMARKS)
    for name, bench in BENCHMARKS.items():
        text = (tasks_dir() / name / f"{name}.yaml").read_text()
        assert text == task_yaml(bench), f"tasks/{name}/{name}.yaml: run python -m harness.benchmarks.tasks"


def test_a_yaml_that_disagrees_with_its_object_is_caught(tmp_path):
    write_tasks(tmp_path, ["math500"])
    path = tmp_path / "math500" / "math500.yaml"
    path.write_text(path.read_text().replace("max_gen_toks: 512", "max_gen_toks: 1024"))
    assert path.read_text() != task_yaml(BENCHMARKS["math500"])


@pytest.mark.parametrize(
    ("task", "doc", "response", "answer"),
    [
        ("amc23", {"gold": "12"}, "so \\boxed{12}", "12"),
        ("amc23", {"gold": "12", "math_grader": "qwen"}, "So the answer is 12", "12"),
        ("amc23", {"gold": "12"}, "<think>\\boxed{3}", None),
        ("gpqa_diamond_cot", {"gold_letter": "B", "choices": ["a", "b", "c", "d"]}, "The answer is (B)", "B"),
    ],
)
def test_score_gives_the_verdict_and_the_records_answer(task, doc, response, answer):
    bench = BENCHMARKS[task]
    score = bench.score({"id": 1, **doc}, response)
    assert score.answer == answer
    assert score.answer == bench.record_fields({"id": 1, **doc}, response)["extracted"]
    assert score.value[bench.metric] == (1.0 if answer is not None else 0.0)


def test_humaneval_score_runs_the_program_it_records(data_dir):
    bench = BENCHMARKS["humaneval"]
    doc = bench.load_rows()[0]
    response = f"```python\n{doc['prompt']}{doc['canonical_solution']}```"
    score = bench.score(doc, response)
    assert score.value["pass@1"] == 1.0
    assert score.answer == bench.record_fields(doc, response)["extracted"]


@pytest.fixture
def tiny_math(tmp_path):
    """A 3-item local math set, registered in one call, removed again afterwards."""
    rows = [
        {"id": "t1", "problem": "What is 1 + 1?", "answer": "2"},
        {"id": "t2", "problem": "What is 2 * 3?", "answer": "6.0"},
        {"id": "t3", "problem": "What is 10 - 7?", "answer": "03"},
    ]
    path = tmp_path / "tiny_math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = register(
        MathBenchmark("tiny_math", max_new_tokens=16, size=3, loader=lambda: load_math_jsonl(path))
    )
    try:
        yield bench
    finally:
        BENCHMARKS.pop("tiny_math")


def test_the_run_readers_see_a_benchmark_registered_later(tiny_math):
    # harness.rundata was imported (with everything above) before tiny_math existed.
    assert "tiny_math" in rundata.MATH_TASKS and "tiny_math" not in rundata.LOGLIKELIHOOD_TASKS
    assert rundata.HEADLINE_METRIC["tiny_math"] == "exact_match" and "tiny_math" not in rundata.EXTRA_METRICS
    assert rundata.headline_metric("tiny_math", ["acc", "exact_match"]) == "exact_match"
    assert rundata.metric_label("tiny_math", "exact_match") == "tiny_math"
    assert list(rundata.HEADLINE_METRIC)[-1] == "tiny_math" and len(rundata.MATH_TASKS) == 4
    # Registry order, ahead of tasks the registry does not know.
    assert sorted(["aaa_unknown", "tiny_math", "amc23"], key=rundata.task_sort_key) == [
        "amc23",
        "tiny_math",
        "aaa_unknown",
    ]
    shape = planned_shape({"eval": {"benchmarks": "amc23,tiny_math"}, "methods": ["sft"]})
    assert shape.columns == [("amc23", "exact_match"), ("tiny_math", "exact_match")]


def test_a_benchmark_removed_again_leaves_the_run_readers(tiny_math):
    BENCHMARKS.pop("tiny_math")
    try:
        assert "tiny_math" not in rundata.MATH_TASKS and "tiny_math" not in rundata.HEADLINE_METRIC
        assert rundata.MATH_TASKS == {"amc23", "aime24", "math500"}
    finally:
        register(tiny_math)


def test_a_new_benchmark_runs_through_harness_eval(tiny_math, tiny_model, tmp_path, monkeypatch):
    from harness_app.cli import app

    extracted = []  # every extraction harness eval makes, through the benchmark's extract
    extract = MathBenchmark.extract
    monkeypatch.setattr(
        MathBenchmark, "extract", lambda self, doc, text: extracted.append(text) or extract(self, doc, text)
    )

    # Its lm-eval task is written from the object, like every checked-in one.
    write_tasks(tmp_path / "tasks", ["tiny_math"])
    monkeypatch.setenv("HARNESS_TASKS_DIR", str(tmp_path / "tasks"))
    assert (
        registry.resolve_benchmarks("tiny_math") == ["tiny_math"] and registry.get("tiny_math").n_items() == 3
    )
    assert drift.applicable_measures("tiny_math") == ("parseable", "critique", "length")
    assert drift.has_final_answer("tiny_math", "so \\boxed{2}") is True
    assert drift.has_final_answer("tiny_math", "no box here") is False

    out = tmp_path / "run"
    args = ["eval", "--model", str(tiny_model), "--benchmarks", "tiny_math", "--max-new-tokens", "16"]
    result = CliRunner().invoke(app, [*args, "-o", str(out), "--label", "tiny"])
    assert result.exit_code == 0, (result.output, result.exception)

    results = json.loads((out / "eval" / "tiny" / "results.json").read_text())
    scores = results["results"]["tiny_math"]
    assert 0.0 <= scores["exact_match,none"] <= 1.0 and "no_answer,none" in scores
    assert results["n-samples"]["tiny_math"]["effective"] == 3
    records = [json.loads(line) for line in (out / "eval" / "tiny" / "samples_tiny_math.jsonl").open()]
    assert [(r["item_id"], r["gold"]) for r in records] == [("t1", "2"), ("t2", "6"), ("t3", "3")]
    assert all(r["prompt"] and "\\boxed{}" in r["prompt"] and "exact_match" in r["metrics"] for r in records)
    # At most one extraction per response: the records carry the answer their Score gave.
    assert len(extracted) <= len(records)
    docs = {d["id"]: d for d in tiny_math.load_rows()}
    assert [r["extracted"] for r in records] == [
        tiny_math.score(docs[r["item_id"]], r["response"]).answer for r in records
    ]
