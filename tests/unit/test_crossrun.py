"""`harness report RUN_A RUN_B`: several runs' variants in one report, on the items they share, and a
one-line refusal where their items are not comparable."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from test_report import N_ITEMS, make_run
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from harness_app.report.build import write_cross_report

pytestmark = pytest.mark.unit


def _run(root: Path, reveal: str) -> Path:
    run = make_run(root)
    config = read_json(run / "config.json")
    atomic_write_json(
        run / "config.json", {**config, "teacher": {"reveal": reveal}, "eval": {"max_new_tokens": 24}}
    )
    return run


def _edit(run: Path, label: str, task: str, change) -> None:
    path = run / "eval" / label / f"samples_{task}.jsonl"
    atomic_write_jsonl(path, [change(r) for r in read_jsonl(path)])


def _all_correct(record: dict) -> dict:
    return {**record, "metrics": {**record["metrics"], "exact_match": 1.0}, "extracted": record["gold"]}


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    a, b = _run(tmp_path / "a", "none"), _run(tmp_path / "b", "answer")
    _edit(b, "cgd", "math500", _all_correct)
    return a, b


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_variants_side_by_side_with_paired_tests(runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_cross_report(list(runs), out)
    table = (out / "table.md").read_text()
    for label in ("base", "cgd@reveal=none", "cgd@reveal=answer", "sft@reveal=none", "sft@reveal=answer"):
        assert label in table
    rows = {(r["variant"], r["benchmark"], r["metric"]): r for r in _csv(out / "variants.csv")}
    math = rows["cgd@reveal=answer", "math500", "exact_match"]
    assert math["reference"] == "cgd@reveal=none" and int(math["n"]) == N_ITEMS
    assert float(math["delta"]) > 0 and math["verdict"] == "better"
    # Identical records elsewhere: no difference, p = 1.
    same = rows["sft@reveal=answer", "math500", "exact_match"]
    assert float(same["delta"]) == 0.0 and float(same["p"]) == 1.0
    assert 'id="variants"' in (out / "report.html").read_text()
    # Each variant against base goes through the ordinary family of the report.
    family = _csv(out / "comparisons.csv")
    assert any("cgd@reveal=answer" in " ".join(r.values()) for r in family)


def test_only_shared_items_are_compared(runs, tmp_path: Path) -> None:
    a, b = runs
    for label in ("base", "sft", "cft", "cgd"):
        path = b / "eval" / label / "samples_math500.jsonl"
        atomic_write_jsonl(path, read_jsonl(path)[: N_ITEMS // 2])
    out = tmp_path / "report"
    write_cross_report([a, b], out)
    math = next(
        r
        for r in _csv(out / "variants.csv")
        if r["variant"] == "cgd@reveal=answer" and r["benchmark"] == "math500"
    )
    assert int(math["n"]) == N_ITEMS // 2


def _refused(runs: list[Path], tmp_path: Path, match: str) -> None:
    with pytest.raises(HarnessError, match=match) as err:
        write_cross_report(runs, tmp_path / "refused")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "refused").exists()  # nothing half-written


def test_a_prompt_that_differs_under_one_id_is_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    _edit(b, "base", "math500", lambda r: {**r, "prompt": r["prompt"] + " (reworded)"})
    _refused([a, b], tmp_path, "math500 item math500-0: its prompt or gold differs")


def test_a_gold_that_differs_is_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    _edit(b, "cgd", "gpqa_diamond", lambda r: {**r, "gold": "B"})
    _refused([a, b], tmp_path, "gpqa_diamond item rec000: its prompt or gold differs")


def test_other_benchmark_version_is_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    results = read_json(b / "eval" / "base" / "results.json")
    atomic_write_json(b / "eval" / "base" / "results.json", {**results, "versions": {"math500": "2.0"}})
    _refused([a, b], tmp_path, "math500 is at different versions")


def test_other_evaluation_settings_are_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    atomic_write_json(b / "config.json", {**read_json(b / "config.json"), "eval": {"max_new_tokens": 48}})
    _refused([a, b], tmp_path, r"eval.max_new_tokens")


def test_other_base_model_is_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    results = read_json(b / "eval" / "base" / "results.json")
    atomic_write_json(b / "eval" / "base" / "results.json", {**results, "model": {"fingerprint": "other"}})
    _refused([a, b], tmp_path, "different base models")


def test_no_item_in_common_is_refused(runs, tmp_path: Path) -> None:
    a, b = runs
    for label in ("base", "sft", "cft", "cgd"):
        for task in ("math500", "gpqa_diamond", "truthfulqa_mc2"):
            _edit(b, label, task, lambda r: {**r, "item_id": "b-" + str(r["item_id"])})
    _refused([a, b], tmp_path, "no evaluated item in common")


def test_cli_takes_several_runs_and_refuses_in_one_line(runs, tmp_path: Path) -> None:
    import typer

    from harness_app.cli.report import report

    app = typer.Typer()
    app.command()(report)
    result = CliRunner().invoke(app, [str(runs[0]), str(runs[1]), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "variants.md").exists()
    twice = CliRunner().invoke(app, [str(runs[0]), str(runs[0]), "-o", str(tmp_path / "x")])
    assert isinstance(twice.exception, HarnessError) and "given twice" in str(twice.exception)
