"""A benchmark is one object: the checked-in task YAMLs are what the objects write, the scorer gives
the verdict and the extracted answer together, and a new benchmark registered in one call runs
through `harness eval` on the tiny model; its own drift measures reach every drift reader."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from harness import drift, registry, rundata
from harness.benchmarks import BENCHMARKS, DriftExtra, MathBenchmark, register
from harness.benchmarks.tasks import task_yaml, write_tasks
from harness.data import load_math_jsonl
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl
from harness.paths import tasks_dir
from harness.plan import planned_shape
from harness.rundata import RunData
from harness_app.report.sections import drift_table


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
    # A math benchmark's answer format, every measure a study added, and no benchmark's own (IFEval's).
    added = tuple(m.name for m in drift.added_measures())
    assert drift.applicable_measures("tiny_math") == ("parseable", *added, "length")
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


# A benchmark's own drift measure: how many responses box exactly one answer; a fall is the better way.
BOXED_ONCE = DriftExtra("boxed_once", "answers boxed once", "boxed once", rise_is_better=False)


@dataclass(frozen=True)
class BoxedOnceMath(MathBenchmark):
    drift_extras: ClassVar[tuple[DriftExtra, ...]] = (BOXED_ONCE,)

    def drift_measures(self, record: dict) -> dict[str, float]:
        response = record.get("response")
        return {BOXED_ONCE.name: float(response.count("\\boxed{") == 1)} if isinstance(response, str) else {}


def _boxed_record(i: int, boxes: int) -> dict:
    return {
        "item_id": f"b{i}",
        "response": "So " + " or ".join(["\\boxed{2}"] * boxes),
        "extracted": "2",
        "gold": "2",
        "metrics": {"exact_match": 1.0},
        "completion_tokens": 10,
    }


def _boxed_run(root, n: int = 12, sft_twice: int = 10):
    """base boxes every answer once; sft boxes `sft_twice` of its `n` answers twice."""
    for label, twice in (("base", 0), ("sft", sft_twice)):
        records = [_boxed_record(i, 2 if i < twice else 1) for i in range(n)]
        atomic_write_jsonl(root / "eval" / label / "samples_tiny_boxed.jsonl", records)
        atomic_write_json(
            root / "eval" / label / "results.json",
            {
                "results": {"tiny_boxed": {"exact_match,none": 1.0}},
                "n-samples": {"tiny_boxed": {"original": n, "effective": n}},
                "versions": {"tiny_boxed": "1.0"},
                "model": {"name": label, "fingerprint": f"fp-{label}"},
            },
        )
    atomic_write_json(root / "config.json", {"methods": ["sft"], "seeds": [0], "benchmarks": ["tiny_boxed"]})
    return RunData(root)


@pytest.fixture
def tiny_boxed(tmp_path):
    bench = register(BoxedOnceMath("tiny_boxed", max_new_tokens=16, size=12, loader=lambda: []))
    try:
        yield bench
    finally:
        BENCHMARKS.pop("tiny_boxed")


def test_a_benchmark_registered_later_brings_its_own_drift_measure(tiny_boxed, tmp_path):
    # harness.drift and the report were imported before tiny_boxed existed.
    assert drift.measure_names()[-2:] == ("ifeval_format", "boxed_once")
    assert drift.applicable_measures("tiny_boxed")[-2:] == ("length", "boxed_once")
    assert "boxed_once" not in drift.applicable_measures("math500")
    assert drift.rise_is_better("boxed_once") is False and drift.rise_is_better("ifeval_format") is True

    run = _boxed_run(tmp_path / "run")
    rows = {r.model: r for r in drift.format_drift(run)}
    assert rows["base"].extras["boxed_once"] == 1.0
    assert rows["sft"].extras["boxed_once"] == pytest.approx(2 / 12)
    assert rows["sft"].extras["ifeval_format"] is None

    section = drift_table(list(rows.values()))
    at = section.table.columns.index("mean length")
    assert section.table.columns[at + 1 : at + 3] == ["IFEval format %", "boxed once %"]
    assert [r[at + 2] for r in section.table.rows] == ["100.0", "16.7"]
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(section.csv))}
    assert (table["base"]["boxed_once_pct"], table["sft"]["boxed_once_pct"]) == ("100.00", "16.67")

    change = next(c for c in drift.changes_vs_base(run) if c.quantity == "boxed_once")
    assert change.label == "answers boxed once on tiny_boxed" and not change.is_score
    assert change.delta == pytest.approx(-10 / 12)


def test_a_benchmark_measure_whose_name_is_taken_is_refused():
    @dataclass(frozen=True)
    class LengthClash(MathBenchmark):
        drift_extras: ClassVar[tuple[DriftExtra, ...]] = (DriftExtra("length", "x", "x"),)

    register(LengthClash("tiny_clash", size=1, loader=lambda: []))
    try:
        with pytest.raises(HarnessError, match="'tiny_clash': drift measure 'length' exists already"):
            drift.measure_names()
    finally:
        BENCHMARKS.pop("tiny_clash")
    assert "length" in drift.measure_names()


def test_a_benchmark_measure_it_does_not_declare_is_refused():
    @dataclass(frozen=True)
    class Undeclared(BoxedOnceMath):
        drift_extras: ClassVar[tuple[DriftExtra, ...]] = ()

    register(Undeclared("tiny_undeclared", size=1, loader=lambda: []))
    try:
        with pytest.raises(
            HarnessError, match="'tiny_undeclared' measures 'boxed_once', which its drift_extras"
        ):
            drift.item_measures([_boxed_record(0, 1)], "tiny_undeclared")
    finally:
        BENCHMARKS.pop("tiny_undeclared")
