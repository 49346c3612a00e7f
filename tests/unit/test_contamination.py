"""The contamination check on a constructed overlap: lm-eval's normalisation, 13-grams from every run
source, the report's table, data.decontaminate, and GPQA text kept out of every file."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from test_report import make_run

from cgd.problems import ProblemsConfig, load_problems
from harness import contamination, layout, registry
from harness.contamination import NGRAM, check_run, drop_contaminated, index_items, ngrams, normalize
from harness.io import atomic_write_jsonl
from harness_app.report.build import write_report

pytestmark = pytest.mark.unit

TEST_ITEM = (
    "A rectangular garden is 24 meters long and 15 meters wide. A path of uniform width surrounds "
    "the garden, and the total area of the garden and the path is 540 square meters. How wide is it?"
)
TEST_ROWS = {
    "math500": [
        {"id": "test/algebra/1.json", "problem": TEST_ITEM, "solution": "Let the width be $w$."},
        {"id": "test/algebra/2.json", "problem": "What is 1 + 1?", "solution": "2"},
    ],
}


def _load(task: str) -> list[dict]:
    return TEST_ROWS[task]


def _words(text: str, start: int, count: int) -> str:
    return " ".join(text.split()[start : start + count])


def test_normalisation_and_ngrams_are_lm_evals() -> None:
    # lm-eval's janitor prints a warning and a traceback when its C++ helper is missing: silenced.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lm_eval.decontamination.janitor import Janitor, word_ngrams
    janitor = Janitor()
    for text in (TEST_ITEM, "It's 3.5 — ÉLAN, (x+y)^2!\n\tDone?", ""):
        assert normalize(text) == janitor.normalize_string(text)
        assert list(ngrams(text)) == list(word_ngrams(janitor.normalize_string(text), NGRAM))


def _run_with(
    tmp_path: Path, problem: str = "", attempt: str = "", critique: str = "", refined: str = ""
) -> Path:
    run = tmp_path / "run"
    atomic_write_jsonl(
        run / layout.TRAIN_PROBLEMS,
        [
            {"id": "p1", "question": problem or "Unrelated question about a triangle.", "solution": "none"},
            {"id": "p2", "question": "Another unrelated question.", "solution": "none"},
        ],
    )
    atomic_write_jsonl(run / layout.ATTEMPTS, [{"id": "p1", "attempt": attempt}, {"id": "p2", "attempt": ""}])
    atomic_write_jsonl(
        run / layout.ANNOTATIONS,
        [{"id": "p1", "critique": critique, "refined": refined}, {"id": "p2", "critique": "", "refined": ""}],
    )
    return run


def _hits(run: Path) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {
        o.source: (o.items, o.rows) for o in check_run(run, index_items(["math500"], load=_load)) if o.items
    }


@pytest.mark.parametrize(
    "source,field",
    [
        ("training problems", "problem"),
        ("student attempts", "attempt"),
        ("critiques", "critique"),
        ("refined answers", "refined"),
    ],
)
def test_thirteen_words_of_a_test_item_in_any_source_are_found(
    tmp_path: Path, source: str, field: str
) -> None:
    # Thirteen words from the middle of the item, re-cased and re-punctuated, inside other text.
    copied = _words(TEST_ITEM, 5, NGRAM).upper().replace(" ", ", ")
    run = _run_with(tmp_path, **{field: f"Consider this. {copied} And so on."})
    assert _hits(run) == {source: (("test/algebra/1.json",), ("p1",))}


def test_twelve_words_are_not_an_overlap(tmp_path: Path) -> None:
    run = _run_with(
        tmp_path, critique=_words(TEST_ITEM, 5, NGRAM - 1), refined=_words(TEST_ITEM, 0, NGRAM - 1)
    )
    assert _hits(run) == {}


def test_decontaminate_drops_the_overlapping_training_problems() -> None:
    index = index_items(["math500"], load=_load)
    rows = [
        {"id": "a", "question": "Fine question.", "solution": "fine"},
        {"id": "b", "question": "Q", "solution": "We know: " + _words(TEST_ITEM, 10, 20)},
        {"id": "c", "question": "Another fine one.", "solution": ""},
    ]
    kept, dropped = drop_contaminated(rows, index)
    assert [r["id"] for r in kept] == ["a", "c"] and dropped == ["b"]


def test_data_decontaminate_against_the_real_test_sets(tmp_path: Path, data_dir: Path) -> None:
    math500 = registry.get("math500").load_rows()
    long = next(r for r in math500 if len(r["problem"].split()) > 30)
    source = tmp_path / "problems.jsonl"
    rows = [
        {
            "unique_id": f"clean-{i}",
            "problem": f"How many apples are in basket number {i}?",
            "solution": "x",
            "answer": "1",
        }
        for i in range(6)
    ] + [{"unique_id": "copied", "problem": long["problem"], "solution": "x", "answer": "1"}]
    atomic_write_jsonl(source, rows)
    config = ProblemsConfig(source=str(source), n_problems=None, n_val=0)
    assert "copied" in {p["id"] for p in load_problems(config)[0]}
    train, _ = load_problems(ProblemsConfig(source=str(source), n_problems=None, n_val=0, decontaminate=True))
    assert sorted(p["id"] for p in train) == [f"clean-{i}" for i in range(6)]


def test_report_has_the_table_and_never_gpqa_text(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)  # evaluates math500, truthfulqa_mc2 and gpqa_diamond
    gpqa = registry.get("gpqa_diamond").load_rows()
    question = next(r for r in gpqa if len(r["question"].split()) > 30)
    math = next(r for r in registry.get("math500").load_rows() if len(r["problem"].split()) > 30)
    atomic_write_jsonl(
        run / layout.TRAIN_PROBLEMS,
        [
            {"id": "p1", "question": math["problem"], "solution": "s"},
            {"id": "p2", "question": "q", "solution": "s"},
        ],
    )
    atomic_write_jsonl(
        run / layout.ANNOTATIONS,
        [
            {"id": "p1", "critique": "Recall: " + question["question"], "refined": "r"},
            {"id": "p2", "critique": "", "refined": ""},
        ],
    )
    out = tmp_path / "report"
    write_report(run, out)
    table = (out / "contamination.md").read_text()
    assert f"| math500 | training problems | 1 of 500 (0.2%) | 1 of 2 (50.0%) | {math['id']} |" in table
    assert f"| gpqa_diamond | critiques | 1 of 198 (0.5%) | 1 of 2 (50.0%) | {question['id']} |" in table
    assert 'id="contamination"' in (out / "report.html").read_text()
    needle = " ".join(question["question"].split()[:8])
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".csv", ".html", ".tex"):
            assert needle not in path.read_text(), path
    # Only hashes are kept in memory, never the n-grams themselves.
    index = index_items(["gpqa_diamond"])
    assert all(isinstance(key, int) for key in index.owners)


def test_all_test_sets_cover_every_benchmark(data_dir: Path) -> None:
    index = contamination.all_test_sets()
    assert set(index.sizes) == set(registry.BENCHMARKS)
    assert index.sizes["math500"] == 500 and index.sizes["gpqa_diamond"] == 198
