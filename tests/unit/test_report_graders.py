"""grader_disagreement on a constructed run directory."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from harness.io import atomic_write_json, atomic_write_jsonl
from harness.rundata import RunData
from harness_app.report.graders import grader_disagreement
from harness_app.report.tables import to_markdown


def _write(run: Path, label: str, task: str, verdicts: list[tuple[bool, bool] | None]) -> None:
    records = []
    for n, pair in enumerate(verdicts):
        record = {
            "task": task,
            "doc_id": n,
            "item_id": str(n * 5),
            "metrics": {"exact_match": float(pair[0]) if pair else 0.0},
        }
        if pair is not None:
            record["verdicts"] = {"qwen": pair[1], "math-verify": pair[0]}
        records.append(record)
    atomic_write_jsonl(run / "eval" / label / f"samples_{task}.jsonl", records)
    results_path = run / "eval" / label / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"results": {}}
    results["results"][task] = {"exact_match,none": 0.5}
    atomic_write_json(results_path, results)


def test_tabulates_split_items_per_benchmark_and_model(tmp_path):
    run = tmp_path / "run"
    atomic_write_json(run / "config.json", {"methods": ["cgd"]})
    both = [(True, True), (False, True), (True, False), (False, False)] + [(True, True)] * 8
    _write(run, "base", "math500", both)
    _write(run, "cgd", "math500", [(True, True)] * 4)
    _write(run, "base", "amc23", [(False, True)] * 12)
    _write(run, "base", "truthfulqa_mc2", [None, None])  # no verdicts: not a row

    section = grader_disagreement(RunData(run))
    assert section is not None
    table = section.table
    assert table.columns == [
        "benchmark",
        "model",
        "items",
        "math-verify %",
        "qwen %",
        "split",
        "math-verify only",
        "qwen only",
        "split items",
    ]
    assert [row[:2] for row in table.rows] == [["amc23", "base"], ["math500", "base"], ["math500", "cgd"]]
    amc, base, cgd = table.rows
    assert base[2:] == ["12", "83.3", "83.3", "2", "1", "1", "5, 10"]
    assert cgd[2:] == ["4", "100.0", "100.0", "0", "0", "0", ""]
    assert amc[5:8] == ["12", "0", "12"]
    assert amc[8].endswith(", ... (+4)") and amc[8].startswith("0, 5, 10")
    rows = list(csv.DictReader(io.StringIO(section.csv)))
    assert rows[0]["split_item_ids"].split() == [str(5 * n) for n in range(12)]
    assert rows[1]["math-verify_correct"] == "10" and rows[1]["qwen_only"] == "1"
    assert "qwen only" in to_markdown(table)


def test_none_without_verdicts(tmp_path):
    run = tmp_path / "run"
    _write(run, "base", "math500", [None] * 3)
    assert grader_disagreement(RunData(run)) is None
