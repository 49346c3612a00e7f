"""The data-build stages end to end on a tiny student, resume, brought critique files, problem selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cgd.teachers
import harness.backends
from cgd import methods, prompts
from cgd.pipeline import ANNOTATIONS, BuildConfig, build, dataset_path
from cgd.problems import NEAR_DUPLICATES, ProblemsConfig, load_problems
from harness.errors import HarnessError
from harness.io import read_json, read_jsonl, sha256_file

FIXTURE = Path(__file__).parent / "cases" / "methods_fixture.jsonl"
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


def test_each_method_dataset_covers_the_same_problems(built):
    run_dir, _ = built
    ids = [p["id"] for p in read_jsonl(run_dir / "problems/train.jsonl")]
    for name in ALL:
        path = run_dir / dataset_path(name)
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

    (run_dir / dataset_path("cgd")).unlink()  # a lost output re-runs its stage only
    build(run_dir, config(tiny_model, ["cgd"]))
    assert (run_dir / dataset_path("cgd")).exists()


def test_sft_alone_needs_neither_student_nor_teacher(tiny_model, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(harness.backends, "make_backend", lambda *a, **k: pytest.fail("no probe needed"))
    records = build(tmp_path, config(tiny_model, ["sft"]))
    assert list(records) == ["problems", "build:sft"]
    assert len(read_jsonl(tmp_path / dataset_path("sft"))) == 4


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
    for example in read_jsonl(tmp_path / dataset_path("cft")):
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
    from harness.app.cli.data import data_build

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
    assert len(read_jsonl(tmp_path / dataset_path("sft"))) == 3
    bad = CliRunner().invoke(
        cli(data_build), ["data-build", "--methods", "sft,ppo", "--run-dir", str(tmp_path)]
    )
    assert isinstance(bad.exception, HarnessError) and "valid methods" in str(bad.exception)
    bad_set = CliRunner().invoke(cli(data_build), ["data-build", "--set", "nope", "--run-dir", str(tmp_path)])
    assert isinstance(bad_set.exception, HarnessError)


def test_train_cli(tmp_path, tiny_model, data_dir):
    from harness.app.cli.data import data_build
    from harness.app.cli.train import train

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
