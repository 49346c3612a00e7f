"""teacher.max_dropped_fraction: the share of problems the teach stage may drop for want of usable teacher
text (a small served model that loops to max_new_tokens) before it stops; counted and reported.

The teacher is the OpenAI backend against test_teachers.py's HTTP server on loopback, one of whose
critiques is always cut at the token cap (greedy: a retry would repeat it, so none is made).
"""

from __future__ import annotations

import json

import pytest
from test_reliability_teacher import QUICK, cut_off
from test_teachers import ok_reply, serve

from cgd.pipeline import (
    ANNOTATIONS,
    ATTEMPTS,
    TRAIN_PROBLEMS,
    BuildConfig,
    method_stage,
    problems_stage,
    teach_stage,
)
from cgd.problems import ProblemsConfig
from cgd.teachers import teacher_identity
from cgd.teachers.base import MAX_FAILED_FRACTION, meta_path
from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_jsonl, read_json, read_jsonl
from harness.run import RunDir
from harness_app.report.leakage import leakage_rows
from harness_app.run_config import resolve

N = 4  # one looping critique in 4 is 25 %, past the default 5 %


def problems_and_attempts(run: RunDir, cfg: BuildConfig) -> str:
    """The problems stage for real, and fixed student attempts recorded as the probe stage's output;
    returns the question whose critique the server cuts off."""
    problems_stage(run, cfg)

    def fixed_attempts():
        rows = [
            {"id": p["id"], "attempt": "The answer is \\boxed{1}."}
            for p in read_jsonl(run.path(TRAIN_PROBLEMS))
        ]
        atomic_write_jsonl(run.path(ATTEMPTS), rows)
        return [ATTEMPTS], {"attempts": len(rows)}

    run.run_stage("probe", {"fixed": True}, fixed_attempts)
    return read_jsonl(run.path(TRAIN_PROBLEMS))[0]["question"]


def looping_server(question: str):
    needle = json.dumps(question[:60])[1:-1]  # as the question appears inside the JSON request body

    def answer(n, body):
        text = json.dumps(body)
        critique = "echo:" not in text  # a refinement request quotes the critique, which starts "echo:"
        if critique and needle in text:
            return cut_off(body, "Let me check. Let me check. Let me check.")
        return ok_reply(body)

    return answer


def build_config(url: str, **options) -> BuildConfig:
    return BuildConfig(
        methods=["cgd"],
        teacher=f"openai:{url}#m",
        teacher_options={**QUICK, **options},
        problems=ProblemsConfig(n_problems=N, n_val=0, seed=0),
    )


def test_a_stated_share_of_looping_critiques_is_dropped_counted_and_reported(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    run = RunDir(tmp_path / "run")
    strict = build_config("http://127.0.0.1:9", max_new_tokens=32)
    question = problems_and_attempts(run, strict)
    with serve(looping_server(question)) as (fake, url):
        # The default keeps today's bound: 1 of 4 is past 5 %, the stage stops and names the way out.
        with pytest.raises(
            HarnessError, match=r"1 of 4 problems .*1 critique truncated.*max_dropped_fraction"
        ):
            teach_stage(run, build_config(url, max_new_tokens=32))
        assert MAX_FAILED_FRACTION * N < 1
        cfg = build_config(url, max_new_tokens=32, max_dropped_fraction=0.25)
        record = teach_stage(run, cfg)
    info = record["info"]
    assert info["dropped"] == 1 and info["rows"] == N - 1
    assert {k: n for k, n in info["failures"].items() if n} == {"critique_truncated": 1}
    assert [r["id"] for r in read_jsonl(run.path(ANNOTATIONS))] == [
        p["id"] for p in read_jsonl(run.path(TRAIN_PROBLEMS))[1:]
    ]
    # The dataset built from it carries the count, and the report's leakage table shows it.
    method_stage(run, cfg, "cgd")
    meta = read_json(meta_path(run.path(layout.dataset("cgd"))))
    assert meta["rows"] == N - 1 and meta["teacher"]["failures"]["critique_truncated"] == 1
    table = leakage_rows({"cgd": meta})
    assert table.rows[0][table.columns.index("problems dropped")] == "1 (1 critique truncated)"


def test_the_share_is_a_typed_teacher_setting_refused_out_of_range():
    config = resolve("smoke", ["teacher.max_dropped_fraction=0.25"])
    assert config.build_config().teacher_options == {"max_dropped_fraction": 0.25}
    with pytest.raises(HarnessError, match="max_dropped_fraction must be a share between 0 and 1"):
        resolve("smoke", ["teacher.max_dropped_fraction=1.5"])
    with pytest.raises(HarnessError, match="max_dropped_fraction"):  # the config's own bound
        resolve("smoke", ["teacher.max_dropped_fraction=-0.1"])
    # The openai teacher accepts it as the stage's option, not a backend one.
    resolve("smoke", ["teacher.model=openai:http://127.0.0.1:9/v1#m", "teacher.max_dropped_fraction=0.5"])


def test_the_share_is_part_of_the_teach_stage_key_only_when_set():
    """A stage that passed at 25 % must not be reused under the default; unset, old stage keys hold."""
    spec = "openai:http://127.0.0.1:9/v1#m"
    assert "max_dropped_fraction" not in teacher_identity(spec, {})
    assert teacher_identity(spec, {"max_dropped_fraction": 0.25})["max_dropped_fraction"] == 0.25
    assert teacher_identity("reference", {"max_dropped_fraction": "0.25"}) == {
        **teacher_identity("reference", {}),
        "max_dropped_fraction": 0.25,
    }
