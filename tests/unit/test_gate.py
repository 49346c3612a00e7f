"""Baselines and regression gates, exercised through the CLI function on a tiny Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from test_report import make_run
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from harness_app.cli.gate import gate
from harness_app.gate import check_gate, record_baseline
from harness_app.requirements import parse_requirement

APP = typer.Typer()
APP.command()(gate)


def invoke(*args: object) -> tuple[int, str]:
    """Exit code and output, mapping HarnessError to exit 2 as `harness_app.cli.main` does."""
    result = CliRunner().invoke(APP, [str(a) for a in args])
    if isinstance(result.exception, HarnessError):
        return 2, str(result.exception)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


@pytest.fixture()
def baseline(run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "baselines" / "smoke.json"
    code, output = invoke("record", run, "-o", path)
    assert code == 0, output
    return path


def flip_correct_to_wrong(run: Path, label: str, task: str, metric: str, count: int) -> None:
    """Inject a regression: `count` correct items of one model become wrong."""
    path = run / "eval" / label / f"samples_{task}.jsonl"
    records = read_jsonl(path)
    for rec in [r for r in records if r["metrics"][metric] == 1.0][:count]:
        rec["metrics"][metric] = 0.0
    atomic_write_jsonl(path, records)
    results = read_json(run / "eval" / label / "results.json")
    results["results"][task][f"{metric},none"] = float(np.mean([r["metrics"][metric] for r in records]))
    atomic_write_json(run / "eval" / label / "results.json", results)


def test_recorded_baseline_content(run: Path, baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    entry = data["labels"]["cgd"]["tasks"]["math500"]
    assert entry["metric"] == "exact_match" and entry["n"] == 60 and entry["version"] == "1.0"
    assert len(entry["items"]) == 60 and set(entry["items"].values()) <= {0.0, 1.0}
    assert entry["score"] == pytest.approx(100 * np.mean(list(entry["items"].values())))
    assert data["labels"]["cgd"]["model_fingerprint"] == "fp-cgd"
    assert data["git_revision"] == "abc1234"
    assert len(entry["data_fingerprint"]) == 64


def test_identical_run_passes(run: Path, baseline: Path) -> None:
    code, output = invoke(run, "--baseline", baseline)
    assert code == 0, output
    assert "gate PASSED" in output
    assert "| cgd.math500 | " in output and "FAIL" not in output


def test_injected_regression_fails_with_reason(run: Path, baseline: Path) -> None:
    flip_correct_to_wrong(run, "cgd", "math500", "exact_match", 15)
    code, output = invoke(run, "--baseline", baseline)
    assert code == 1
    line = next(ln for ln in output.splitlines() if ln.startswith("| cgd.math500 "))
    assert "FAIL" in line and "dropped 25.00 points > max-drop 2" in line and "mcnemar" in line
    assert "| cft.math500 " in output and "gate FAILED (1 of " in output


def test_drop_that_is_not_significant_passes(run: Path, baseline: Path) -> None:
    flip_correct_to_wrong(run, "cgd", "math500", "exact_match", 3)  # 5 points, McNemar p = 0.25
    result = check_gate(run, baseline, multiplicity="none")
    check = next(c for c in result.checks if c.what == "cgd.math500")
    assert check.passed and check.delta == pytest.approx(-5.0) and check.p_value == pytest.approx(0.25)
    assert "not significant" in check.why
    assert result.exit_code == 0


def test_larger_max_drop_lets_a_regression_pass(run: Path, baseline: Path) -> None:
    flip_correct_to_wrong(run, "cgd", "math500", "exact_match", 15)
    assert check_gate(run, baseline, max_drop=30).exit_code == 0


def test_label_missing_from_run_fails(run: Path, baseline: Path) -> None:
    (run / "eval" / "cft" / "results.json").unlink()
    code, output = invoke(run, "--baseline", baseline)
    assert code == 1 and "label missing from the run" in output


def test_baseline_from_another_task_version_is_unusable(run: Path, baseline: Path) -> None:
    results = read_json(run / "eval" / "sft" / "results.json")
    results["versions"]["math500"] = "2.0"
    atomic_write_json(run / "eval" / "sft" / "results.json", results)
    code, message = invoke(run, "--baseline", baseline)
    assert code == 2
    assert "sft.math500 was recorded on task version 1.0, the run has version 2.0" in message


def test_baseline_from_another_item_set_is_unusable(run: Path, baseline: Path) -> None:
    path = run / "eval" / "base" / "samples_gpqa_diamond.jsonl"
    atomic_write_jsonl(path, read_jsonl(path)[:40])
    code, message = invoke(run, "--baseline", baseline)
    assert code == 2
    assert (
        "base.gpqa_diamond was recorded on another item set (60 items in the baseline, 40 in the run"
        in message
    )


@pytest.mark.parametrize(
    "content,reason",
    [
        ("not json {", "not valid JSON"),
        ('{"schema": "other"}', "malformed"),
        ('{"schema": "cgd-harness-baseline/1", "labels": {}}', "no labels"),
    ],
)
def test_malformed_baseline_is_unusable(run: Path, tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, message = invoke(run, "--baseline", path)
    assert code == 2 and reason in message


def test_tampered_baseline_is_unusable(run: Path, baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    data["labels"]["base"]["tasks"]["math500"]["items"].pop("math500-0")
    baseline.write_text(json.dumps(data))
    code, message = invoke(run, "--baseline", baseline)
    assert code == 2 and "data_fingerprint does not match" in message


def test_missing_baseline_file_is_unusable(run: Path, tmp_path: Path) -> None:
    code, message = invoke(run, "--baseline", tmp_path / "nope.json")
    assert code == 2 and "not found" in message


def test_requirements_inside_one_run(run: Path) -> None:
    code, output = invoke(
        run,
        "--require",
        "cgd.math500 >= base.math500",
        "--require",
        "cgd.truthfulqa_mc2 >= base.truthfulqa_mc2 - 2",
        "--require",
        "cgd.math500.exact_match > 10",
    )
    assert code == 0, output
    assert "holds" in output and "base.truthfulqa_mc2 = 45.02 - 2" in output
    code, output = invoke(run, "--require", "cft.truthfulqa_mc2 >= base.truthfulqa_mc2 - 2")
    assert code == 1 and "does not hold" in output and "FAIL" in output


def test_requirement_against_a_method_with_seeds(tmp_path: Path) -> None:
    run = make_run(tmp_path, methods=("cgd",), seeds=(0, 1))
    result = check_gate(run, requires=["cgd.math500 > base.math500", "cgd@seed1.math500 > 0"])
    assert result.exit_code == 0 and all(c.p_value is not None for c in result.checks[:1])


@pytest.mark.parametrize(
    "expr",
    [
        "cgd.math500 => base.math500",
        "cgd >= base.math500",
        "cgd.math500 >= base.math500 * 2",
        "__import__('os').system('true')",
        "cgd.math500 >= base.math500 - two",
        "",
    ],
)
def test_bad_requirement_syntax_is_unusable(run: Path, expr: str) -> None:
    code, message = invoke(run, "--require", expr)
    assert code == 2 and "bad --require expression" in message and ">= > <= < ==" in message


@pytest.mark.parametrize(
    "expr,reason",
    [
        ("dpo.math500 >= base.math500", "unknown label 'dpo'; valid: base, sft, cft, cgd"),
        (
            "cgd.math500 >= base.aime24",
            "unknown task 'aime24' for base; valid: math500, gpqa_diamond, truthfulqa_mc2",
        ),
        ("cgd.math500.f1 >= 3", "unknown metric 'f1' for cgd.math500; valid: exact_match"),
    ],
)
def test_unknown_names_list_valid_choices(run: Path, expr: str, reason: str) -> None:
    code, message = invoke(run, "--require", expr)
    assert code == 2 and reason in message


def test_parser_handles_dashed_labels_offsets_and_numbers() -> None:
    req = parse_requirement("distill-sft.math500>=base.math500-2.5")
    assert (req.lhs.label, req.lhs.task, req.op, str(req.rhs), req.offset) == (
        "distill-sft",
        "math500",
        ">=",
        "base.math500",
        -2.5,
    )
    req = parse_requirement("cgd@seed0.humaneval.pass@1 < 40")
    assert (req.lhs.label, req.lhs.metric, req.rhs, req.offset) == ("cgd@seed0", "pass@1", None, 40.0)


def test_usage_errors(run: Path, tmp_path: Path) -> None:
    assert invoke(run)[0] == 2  # nothing to check
    assert invoke("record", run)[0] == 2  # record needs -o
    assert invoke(run, "extra", "--require", "cgd.math500 > 1")[0] == 2
    code, message = invoke(run, "--require", "cgd.math500 > 1", "--alpha", "1.5")
    assert code == 2 and "--alpha" in message


def test_help_explains_both_modes() -> None:
    output = CliRunner().invoke(APP, ["--help"], terminal_width=120).output
    assert "harness gate record RUN_DIR -o" in output and "--baseline" in output and "Exit codes" in output


def test_record_then_check_through_the_python_api(run: Path, tmp_path: Path) -> None:
    record_baseline(run, tmp_path / "b.json")
    result = check_gate(run, tmp_path / "b.json", requires=["cgd.math500 >= base.math500"])
    assert result.passed and len(result.checks) == 4 * 3 + 1


def test_baseline_checks_are_adjusted_as_one_family(run: Path, baseline: Path) -> None:
    # 8 points, McNemar p = 2 / 2^5 = 0.0625 raw: not significant alone; 12 flips: p = 2 / 4096.
    flip_correct_to_wrong(run, "cgd", "math500", "exact_match", 12)
    raw = check_gate(run, baseline, multiplicity="none")
    holm = check_gate(run, baseline, multiplicity="holm")
    by_what = {c.what: c for c in holm.checks}
    raw_p = next(c.p_value for c in raw.checks if c.what == "cgd.math500")
    family = len([c for c in raw.checks if c.p_value is not None])
    assert raw_p == pytest.approx(2 / 2**12)
    assert by_what["cgd.math500"].p_value == pytest.approx(
        min(1.0, raw_p * family)
    )  # smallest p: x family size
    assert not by_what["cgd.math500"].passed and "adjusted p" in by_what["cgd.math500"].why
    assert invoke(run, "--baseline", baseline, "--multiplicity", "bogus")[0] == 2


def test_non_inferiority_uses_the_interval_not_the_point(run: Path) -> None:
    # cgd vs itself: delta 0, but the interval of 60 items is wider than a 0.5-point margin.
    tight = check_gate(run, non_inferior=["cgd.math500 >= cgd.math500 - 0.5"])
    wide = check_gate(run, non_inferior=["cgd.math500 >= cgd.math500 - 10"])
    assert tight.checks[0].delta == 0 and not tight.passed and "not above -0.5" in tight.checks[0].why
    assert wide.passed and "above -10" in wide.checks[0].why
    code, output = invoke(run, "--non-inferior", "cgd.math500 <= base.math500")
    assert code == 2 and "bad --non-inferior expression" in output
