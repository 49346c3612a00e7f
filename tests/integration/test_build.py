"""The data-build stages end to end on a tiny student, resume, brought critique files, problem selection."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cgd.teachers
import harness.backends
import harness.registry
from cgd import methods, prompts
from cgd.pipeline import ANNOTATIONS, BuildConfig, build, select_right_ratio
from cgd.problems import NEAR_DUPLICATES, ProblemsConfig, load_problems
from harness import layout
from harness.errors import HarnessError
from harness.io import read_json, read_jsonl, sha256_file

FIXTURE = Path(__file__).parents[1] / "cases" / "methods_fixture.jsonl"
ALL = sorted(methods.METHODS)


def config(tiny_model: Path | str, names: list[str], **kw) -> BuildConfig:
    return BuildConfig(
        methods=names,
        model=str(tiny_model),
        problems=ProblemsConfig(n_problems=4, n_val=2, seed=1, probe_max_new_tokens=8),
        **kw,
    )


@pytest.fixture(scope="module")
def built(tiny_model, data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("build") / "run"
    return run_dir, build(run_dir, config(tiny_model, ALL))


def test_every_stage_ran_and_wrote_its_files(built):
    run_dir, records = built
    assert list(records) == ["problems", "probe", "teach"] + [f"build:{m}" for m in ALL]
    train, val = read_jsonl(run_dir / "problems/train.jsonl"), read_jsonl(run_dir / "problems/val.jsonl")
    assert len(train) == 4 and len(val) == 2
    assert not {p["id"] for p in train} & {p["id"] for p in val}
    attempts = read_jsonl(run_dir / "probe/attempts.jsonl")
    assert [a["id"] for a in attempts] == [p["id"] for p in train]
    assert all(a["completion_tokens"] <= 8 for a in attempts)


def test_teacher_output_is_a_dataset_with_metadata(built):
    run_dir, _ = built
    rows = read_jsonl(run_dir / ANNOTATIONS)
    meta = read_json(run_dir / "teach/annotations.meta.json")
    assert meta["teacher"] == "reference" and meta["prompts_version"] == prompts.PROMPTS_VERSION
    assert meta["stats"]["rows"] == 4 and meta["stats"]["verdict_agreement"] == 1.0
    attempts = {a["id"]: a["attempt"] for a in read_jsonl(run_dir / "probe/attempts.jsonl")}
    for row in rows:
        assert row["attempt"] == attempts[row["id"]]
        assert row["verdict"] is row["attempt_correct"]
        assert row["refined_correct"]


def test_datasets_record_the_leakage_of_their_critiques(built):
    run_dir, _ = built
    teach = read_json(run_dir / "teach/annotations.meta.json")
    leakage = teach["stats"]["leakage"]
    assert leakage["n"] == 4 and leakage["ngram"] == 6
    assert leakage["answer_stated"]["count"] == 0  # the reference teacher's default, reveal=none
    assert teach["reveal"] == "none"
    for name in ("cft", "cgd"):
        meta = read_json(run_dir / f"data/{name}.meta.json")
        assert meta["leakage"] == leakage and meta["teacher"]["reveal"] == "none"
        assert meta["right_ratio"] is None
    assert read_json(run_dir / "data/sft.meta.json")["leakage"] is None


def test_the_probe_asks_what_the_math_benchmarks_ask():
    from cgd.probe import probe_request
    from harness.registry import math_prompt

    question = "  What is $\\{2+3\\}$?\n"
    assert prompts.SOLVE is harness.registry.MATH_PROMPT
    assert probe_request(question, 8).messages[0]["content"] == math_prompt({"problem": question})
    assert prompts.solve_request(question) == math_prompt({"problem": question})


def test_each_method_dataset_covers_the_same_problems(built):
    run_dir, _ = built
    ids = [p["id"] for p in read_jsonl(run_dir / "problems/train.jsonl")]
    for name in ALL:
        path = run_dir / layout.dataset(name)
        examples = read_jsonl(path)
        assert [e["id"] for e in examples] == ids
        assert all(set(e) == {"id", "prompt", "completion"} for e in examples)
        meta = read_json(run_dir / f"data/{name}.meta.json")
        assert meta["prompts_version"] == prompts.PROMPTS_VERSION and meta["method"] == name
        assert meta["dataset_hash"] == sha256_file(path)
        assert (meta["teacher"] is None) == (name == "sft")


def test_a_rerun_skips_finished_stages_and_a_new_method_builds_alone(built, tiny_model, monkeypatch):
    run_dir, records = built
    manifest = (run_dir / "manifest.json").read_text()
    monkeypatch.setattr(harness.backends, "make_backend", lambda *a, **k: pytest.fail("probed again"))
    monkeypatch.setattr(cgd.teachers, "annotate", lambda *a, **k: pytest.fail("taught again"))
    assert build(run_dir, config(tiny_model, ALL)) == records
    assert (run_dir / "manifest.json").read_text() == manifest

    (run_dir / layout.dataset("cgd")).unlink()  # a lost output re-runs its stage only
    build(run_dir, config(tiny_model, ["cgd"]))
    assert (run_dir / layout.dataset("cgd")).exists()


def test_sft_alone_needs_neither_student_nor_teacher(tiny_model, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(harness.backends, "make_backend", lambda *a, **k: pytest.fail("no probe needed"))
    records = build(tmp_path, config(tiny_model, ["sft"]))
    assert list(records) == ["problems", "build:sft"]
    assert len(read_jsonl(tmp_path / layout.dataset("sft"))) == 4


def test_a_brought_critique_file_replaces_probe_and_teach(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(harness.backends, "make_backend", lambda *a, **k: pytest.fail("no probe needed"))
    cfg = BuildConfig(
        methods=["cft", "cgd"], teacher_file=str(FIXTURE), problems=ProblemsConfig(n_problems=3, n_val=1)
    )
    records = build(tmp_path, cfg)
    assert list(records) == ["problems", "teach", "build:cft", "build:cgd"]
    meta = read_json(tmp_path / "data/cgd.meta.json")
    assert meta["teacher"]["source_file"] == str(FIXTURE)
    fixture = {r["id"]: r for r in map(json.loads, FIXTURE.read_text().splitlines())}
    for example in read_jsonl(tmp_path / layout.dataset("cft")):
        assert example["completion"][0]["content"] == fixture[example["id"]]["critique"]


def test_a_brought_file_without_a_needed_column_names_it(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [
        {k: v for k, v in json.loads(line).items() if k != "refined"}
        for line in FIXTURE.read_text().splitlines()
    ]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = BuildConfig(methods=["cgd"], teacher_file=str(bad), problems=ProblemsConfig(n_problems=3, n_val=1))
    with pytest.raises(HarnessError, match="refined"):
        build(tmp_path / "run", cfg)


# ------------------------------------------------------------------ right/wrong ratio


def verdict_rows(n_right: int, n_wrong: int, n_none: int = 0) -> list[dict]:
    verdicts = [True] * n_right + [False] * n_wrong + [None] * n_none
    return [{"id": f"r{i}", "verdict": v} for i, v in enumerate(verdicts)]


def kept(rows: list[dict]) -> tuple[int, int]:
    return sum(r["verdict"] is True for r in rows), sum(r["verdict"] is False for r in rows)


@pytest.mark.parametrize(
    "n_right, n_wrong, ratio, expected",
    [
        (3, 7, 0.5, (3, 3)),  # the larger side is subsampled to the smaller
        (3, 7, 0.3, (3, 7)),  # already at the ratio: all kept (exact arithmetic, not 9.999 rows)
        (6, 4, 0.25, (1, 4)),  # the smaller side kept whole: 0.2 is the closest
        (5, 2, 1.0, (5, 0)),
        (5, 2, 0, (0, 2)),
        (40, 60, 0.7, (40, 17)),  # 40 / 57 = 0.702, the closest the rows allow
    ],
)
def test_right_ratio_keeps_the_asked_share(n_right, n_wrong, ratio, expected):
    rows, info = select_right_ratio(verdict_rows(n_right, n_wrong, 2), ratio, seed=0)
    assert kept(rows) == expected
    assert (info["right"], info["wrong"], info["dropped_no_verdict"]) == (*expected, 2)
    assert info["target"] == ratio and info["achieved"] == round(expected[0] / sum(expected), 4)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=lambda i: int(i[1:]))


def test_right_ratio_is_seeded():
    rows = verdict_rows(10, 30)
    first, _ = select_right_ratio(rows, 0.5, seed=0)
    assert select_right_ratio(rows, 0.5, seed=0)[0] == first
    assert select_right_ratio(rows, 0.5, seed=1)[0] != first


@pytest.mark.parametrize(
    "n_right, n_wrong, ratio, message",
    [
        (0, 9, 0.5, "cannot be met: the critiques judged 0 attempts right and 9 wrong"),
        (4, 0, 0.5, "cannot be met"),
        (0, 4, 1.0, "cannot be met"),
        (1, 1, 0.01, "cannot be met"),  # one right needs 99 wrong
        (4, 4, 1.5, "between 0 and 1"),
        (4, 4, -0.1, "between 0 and 1"),
    ],
)
def test_a_ratio_that_cannot_be_met_is_one_clear_error(n_right, n_wrong, ratio, message):
    with pytest.raises(HarnessError, match=message):
        select_right_ratio(verdict_rows(n_right, n_wrong), ratio, seed=0)


def test_right_ratio_selects_the_same_problems_for_every_method(tmp_path):
    # The fixture has no verdict column: the ratio reads the critiques' verdict lines (2 right, 2 wrong).
    cfg = BuildConfig(
        methods=["sft", "cgd"],
        teacher_file=str(FIXTURE),
        problems=ProblemsConfig(n_problems=4, n_val=0),
        right_ratio=0.5,
    )
    build(tmp_path, cfg)
    assert [e["id"] for e in read_jsonl(tmp_path / layout.dataset("sft"))] == [
        e["id"] for e in read_jsonl(tmp_path / layout.dataset("cgd"))
    ]
    meta = read_json(tmp_path / "data/sft.meta.json")
    assert meta["rows"] == 4 and meta["right_ratio"]["achieved"] == 0.5
    build(tmp_path, dataclasses.replace(cfg, right_ratio=1 / 3, methods=["cgd"]))
    meta = read_json(tmp_path / "data/cgd.meta.json")
    assert meta["rows"] == 3 and (meta["right_ratio"]["right"], meta["right_ratio"]["wrong"]) == (1, 2)
    assert meta["leakage"]["n"] == 3  # measured on the kept rows
    with pytest.raises(HarnessError, match="right_ratio=0.25 cannot be met"):
        build(tmp_path, dataclasses.replace(cfg, right_ratio=0.25, methods=["cgd"]))


def test_profile_keys_reach_the_build_and_bad_values_stop_compare_before_any_work(tmp_path):
    from harness_app.run_config import resolve

    cfg = resolve("smoke", ["data.right_ratio=0.5", "teacher.reveal=steps"]).build_config()
    assert cfg.right_ratio == 0.5 and cfg.teacher_options == {"reveal": "steps"}
    assert resolve("smoke", []).build_config().right_ratio is None
    for sets, message in (
        (["teacher.reveal=all"], "teacher.reveal=all: choose one of none, answer, steps"),
        (["data.right_ratio=2"], "between 0 and 1"),
        (["teacher.model=openai:http://127.0.0.1:9/v1#m", "teacher.reveal=none"], "unknown option reveal"),
    ):
        with pytest.raises(HarnessError, match=message):
            resolve("smoke", sets)


# ------------------------------------------------------------------ problems


def test_near_duplicates_of_math500_are_dropped(data_dir):
    assert len(NEAR_DUPLICATES) == 14
    pool, _ = load_problems(ProblemsConfig(n_problems=None, n_val=0))
    assert len(pool) == 12000 - 14 and not {p["id"] for p in pool} & NEAR_DUPLICATES
    kept, _ = load_problems(ProblemsConfig(n_problems=None, n_val=0, drop_near_duplicates=False))
    assert len(kept) == 12000


def test_selection_knobs(data_dir):
    train, val = load_problems(ProblemsConfig(n_problems=10, n_val=5, subjects=["Geometry"], levels=[1, 2]))
    assert all(p["subject"] == "Geometry" and p["level"] in (1, 2) for p in train + val)
    more, same_val = load_problems(
        ProblemsConfig(n_problems=20, n_val=5, subjects=["Geometry"], levels=[1, 2])
    )
    assert same_val == val and more[:10] == train  # growing n keeps the validation split and the first picks
    other, _ = load_problems(
        ProblemsConfig(n_problems=10, n_val=5, seed=9, subjects=["Geometry"], levels=[1, 2])
    )
    assert other != train
    with pytest.raises(HarnessError, match="only"):
        load_problems(ProblemsConfig(n_problems=100000))


def test_another_dataset_maps_its_columns(tmp_path):
    path = tmp_path / "webinstruct.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "response": f"r{i}", "final": i}) + "\n" for i in range(5))
    )
    columns = {"question": "prompt", "solution": "response", "answer": "final"}
    train, val = load_problems(ProblemsConfig(source=str(path), n_problems=3, n_val=2, columns=columns))
    assert {p["question"] for p in train + val} == {f"q{i}" for i in range(5)}
    assert all(p["answer"] == p["question"][1:] and p["id"] for p in train)
    with pytest.raises(HarnessError, match="'solution'"):
        load_problems(ProblemsConfig(source=str(path), n_problems=3, n_val=2))


# ------------------------------------------------------------------ CLI functions


def cli(fn) -> typer.Typer:
    app = typer.Typer()
    app.command()(fn)
    app.command("unused")(lambda: None)  # two commands, so the function is invoked by its name
    return app


def test_data_build_cli(tmp_path, data_dir):
    from harness_app.cli.data import data_build

    result = CliRunner().invoke(
        cli(data_build),
        [
            "data-build",
            "--methods",
            "sft",
            "--n-problems",
            "3",
            "--n-val",
            "1",
            "--levels",
            "1,2",
            "--run-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "build:sft" in result.output
    assert len(read_jsonl(tmp_path / layout.dataset("sft"))) == 3
    bad = CliRunner().invoke(
        cli(data_build), ["data-build", "--methods", "sft,ppo", "--run-dir", str(tmp_path)]
    )
    assert isinstance(bad.exception, HarnessError) and "valid methods" in str(bad.exception)
    bad_set = CliRunner().invoke(cli(data_build), ["data-build", "--set", "nope", "--run-dir", str(tmp_path)])
    assert isinstance(bad_set.exception, HarnessError)


def test_train_cli(tmp_path, tiny_model, data_dir):
    from harness_app.cli.data import data_build
    from harness_app.cli.train import train

    CliRunner().invoke(
        cli(data_build),
        ["data-build", "--methods", "sft", "--n-problems", "2", "--n-val", "0", "--run-dir", str(tmp_path)],
    )
    result = CliRunner().invoke(
        cli(train),
        [
            "train",
            "--method",
            "sft",
            "--run-dir",
            str(tmp_path),
            "--model",
            str(tiny_model),
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--max-length",
            "256",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = read_json(tmp_path / "train/sft/summary.json")
    assert summary["steps"] == 1 and f"tokens={summary['tokens_trained']}" in result.output
