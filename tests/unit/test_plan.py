"""`harness plan`: the MDE table of a profile, before any compute, and its bad input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cgd.hypotheses import HYPOTHESES
from harness.errors import HarnessError
from harness.plan import family_size, plan
from harness.stats import mde
from harness_app.cli import app
from harness_app.run_config import resolve


def _config(profile, sets):
    return resolve(profile, sets).as_dict()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["plan", *args])
    if isinstance(result.exception, HarnessError):
        return 2, str(result.exception)
    return result.exit_code, result.output


def test_plan_rows_follow_the_profile() -> None:
    config = _config("cpu-small", ["eval.benchmarks=math500,truthfulqa_mc2", "eval.limit=100"])
    rows, family, cfg = plan(config, HYPOTHESES, 5.0)
    assert [(r.task, r.n) for r in rows] == [("math500", 100), ("truthfulqa_mc2", 100)]
    assert rows[0].mde_at[2] == mde(100, 0.2, cfg.alpha)
    assert rows[0].mde_holm > rows[0].mde_at[2]  # alpha / family is stricter
    assert rows[0].n_needed[0] < rows[0].n_needed[1] < rows[0].n_needed[2]
    assert family == family_size(config, HYPOTHESES) and family > 3


def test_full_sets_and_truthfulqa_versions() -> None:
    rows, _, _ = plan(
        _config("smoke", ["eval.limit=null", "eval.benchmarks=math500,truthfulqa_mc1"]), HYPOTHESES, 5.0
    )
    assert [r.n for r in rows] == [500, 817]
    rows, _, _ = plan(
        _config(
            "smoke", ["eval.limit=null", "eval.benchmarks=truthfulqa_mc1", "eval.truthfulqa_version=2025"]
        ),
        HYPOTHESES,
        5.0,
    )
    assert rows[0].n == 790


def test_plan_command_prints_the_table() -> None:
    code, output = invoke("--profile", "smoke", "--effect", "10")
    assert code == 0, output
    assert "| math500 | 4 | none |" in output and "n for 10 pts @20%" in output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--profile", "nope"], "unknown profile"),
        (["--set", "eval.benchmarks=math500,nope"], "unknown benchmark"),
        (["--effect", "0"], "--effect must be in (0, 100]"),
        (["--set", "analysis.margin=-2"], "analysis.margin=-2.0: must be >= 0"),
    ],
)
def test_bad_input_is_one_clear_error(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2 and message in output
