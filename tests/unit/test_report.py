"""write_report on a synthetic run directory: every file, deterministic tables, seeds, flips."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl, read_json
from harness_app.cli.report import report
from harness_app.report.build import write_report

# Per label: probability of a correct math answer, share of critique-style math answers,
# mean truthfulqa_mc2 score, probability of a correct GPQA letter.
PROFILES = {
    "base": dict(math=0.5, critique=0.0, mc2=0.45, gpqa=0.30),
    "sft": dict(math=0.55, critique=0.0, mc2=0.44, gpqa=0.30),
    "cft": dict(math=0.45, critique=0.6, mc2=0.30, gpqa=0.25),
    "cgd": dict(math=0.65, critique=0.0, mc2=0.45, gpqa=0.31),
}
N_ITEMS = 60


def _math_record(i: int, correct: bool, critique: bool) -> dict:
    text = (
        "Critique: the student's solution is wrong.\nConclusion: wrong"
        if critique
        else f"Adding gives {i}. The answer is \\boxed{{{i if correct else i + 1}}}."
    )
    return {
        "task": "math500",
        "doc_id": i,
        "item_id": f"math500-{i}",
        "prompt": f"Problem {i}",
        "response": text,
        "extracted": None if critique else str(i),
        "gold": str(i),
        "metrics": {"exact_match": float(correct and not critique), "timeout": 0.0},
        "prompt_tokens": 20,
        "completion_tokens": 40 + 3 * (i % 7) + (60 if critique else 0),
        "seconds": 0.1,
    }


def _gpqa_record(i: int, correct: bool) -> dict:
    # GPQA records never carry question or response text.
    return {
        "task": "gpqa_diamond",
        "doc_id": i,
        "item_id": f"rec{i:03d}",
        "gold": "A",
        "extracted": "A" if correct else "B",
        "metrics": {"acc": float(correct)},
    }


def _mc2_record(i: int, score: float) -> dict:
    return {"task": "truthfulqa_mc2", "doc_id": i, "item_id": f"tqa-{i}", "metrics": {"acc": score}}


def _samples(label: str, seed: int) -> dict[str, list[dict]]:
    profile = PROFILES[label.split("@")[0]]
    rng = np.random.default_rng([sorted(PROFILES).index(label.split("@")[0]), seed])
    return {
        "math500": [
            _math_record(i, rng.random() < profile["math"], rng.random() < profile["critique"])
            for i in range(N_ITEMS)
        ],
        "truthfulqa_mc2": [
            _mc2_record(i, float(np.clip(rng.normal(profile["mc2"], 0.15), 0, 1))) for i in range(N_ITEMS)
        ],
        "gpqa_diamond": [_gpqa_record(i, rng.random() < profile["gpqa"]) for i in range(N_ITEMS)],
    }


METRICS = {"math500": "exact_match", "truthfulqa_mc2": "acc", "gpqa_diamond": "acc"}


def write_eval(run: Path, label: str, samples: dict[str, list[dict]], version: str = "1.0") -> None:
    """eval/<label>/: samples files and an lm-eval-shaped results.json consistent with them."""
    results, n_samples = {}, {}
    for task, records in samples.items():
        metric = METRICS[task]
        values = [r["metrics"][metric] for r in records]
        results[task] = {
            f"{metric},none": float(np.mean(values)),
            f"{metric}_stderr,none": float(np.std(values) / np.sqrt(len(values))),
        }
        n_samples[task] = {"original": len(records), "effective": len(records)}
        atomic_write_jsonl(run / "eval" / label / f"samples_{task}.jsonl", records)
    atomic_write_json(
        run / "eval" / label / "results.json",
        {
            "results": results,
            "n-samples": n_samples,
            "versions": {t: version for t in samples},
            "model": {"name": label, "fingerprint": f"fp-{label}"},
        },
    )


def write_training(run: Path, label: str, seed: int) -> None:
    steps = range(0, 50, 5)
    atomic_write_jsonl(
        run / "train" / label / "log.jsonl",
        [{"step": s, "loss": 2.0 / (1 + s / 10) + 0.01 * seed, "tokens": 100 * s} for s in steps],
    )
    atomic_write_json(
        run / "train" / label / "summary.json",
        {
            "tokens_trained": 5000,
            "wall_seconds": 12.5,
            "teacher_tokens": 0 if label.startswith("sft") else 8000,
            "final_loss": 0.4,
        },
    )


def make_run(
    root: Path,
    methods: tuple[str, ...] = ("sft", "cft", "cgd"),
    seeds: tuple[int, ...] = (0,),
    training: bool = True,
) -> Path:
    """A run directory with base + methods on math500, truthfulqa_mc2 and gpqa_diamond."""
    run = root / "run-1"
    labels = list(methods) if len(seeds) == 1 else [f"{m}@seed{s}" for m in methods for s in seeds]
    atomic_write_json(
        run / "config.json",
        {
            "git_revision": "abc1234",
            "seeds": list(seeds),
            "methods": list(methods),
            "benchmarks": sorted(METRICS),
            "profile": "test",
        },
    )
    write_eval(run, "base", _samples("base", 0))
    for label in labels:
        seed = int(label.split("@seed")[1]) if "@seed" in label else 0
        write_eval(run, label, _samples(label, seed))
        if training:
            write_training(run, label, seed)
    return run


TABLES = (
    "table.md",
    "table.csv",
    "table.tex",
    "drift.md",
    "drift.csv",
    "forgetting.csv",
    "compute.md",
    "compute.csv",
    "summary.md",
)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    out = root / "out"
    write_report(make_run(root), out)
    return out


def test_every_file_is_written(report_dir: Path) -> None:
    for name in (
        *TABLES,
        "report.html",
        "scores.png",
        "drift.png",
        "loss.png",
        "flips/math500.csv",
        "flips/truthfulqa_mc2.csv",
        "flips/gpqa_diamond.csv",
    ):
        assert (report_dir / name).stat().st_size > 0, name
    assert (report_dir / "scores.png").read_bytes().startswith(b"\x89PNG")


def test_tables_are_byte_identical_when_rewritten(report_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_report(make_run(tmp_path), again)
    for name in (*TABLES, "flips/math500.csv"):
        assert (again / name).read_bytes() == (report_dir / name).read_bytes(), name


def test_reports_start_with_revision_and_end_with_config(report_dir: Path) -> None:
    for name in ("table.md", "drift.md", "summary.md", "compute.md", "findings.md"):
        text = (report_dir / name).read_text()
        assert any("abc1234" in line for line in text.splitlines()[:4]), name
        assert text.index("## Findings" if name == "summary.md" else "|") < text.index('"profile": "test"'), (
            name
        )
    assert "abc1234" in (report_dir / "table.tex").read_text().splitlines()[0]
    html = (report_dir / "report.html").read_text()
    assert "abc1234" in html and "data:image/png;base64," in html


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_main_table_marks_best_and_deltas(report_dir: Path) -> None:
    rows = _csv(report_dir / "table.csv")
    math = {r["model"]: r for r in rows if r["task"] == "math500"}
    best = [m for m, r in math.items() if r["best"] == "1"]
    assert best == [max(math, key=lambda m: float(math[m]["score"]))]
    assert math["base"]["delta_vs_base"] == ""
    delta = float(math["cgd"]["score"]) - float(math["base"]["score"])
    assert float(math["cgd"]["delta_vs_base"]) == pytest.approx(delta, abs=0.011)
    assert float(math["cgd"]["ci_low"]) <= float(math["cgd"]["score"]) <= float(math["cgd"]["ci_high"])
    md = (report_dir / "table.md").read_text()
    assert f"**{float(math[best[0]]['score']):.1f} [" in md


def test_drift_and_forgetting_show_the_critique_model(report_dir: Path) -> None:
    drift = {(r["task"], r["model"]): r for r in _csv(report_dir / "drift.csv")}
    assert float(drift["math500", "cft"]["critique_pct"]) > 40
    assert float(drift["math500", "base"]["critique_pct"]) == 0
    assert float(drift["math500", "cft"]["parseable_pct"]) < float(drift["math500", "base"]["parseable_pct"])
    assert drift["math500", "base"]["length_unit"] == "tokens"
    assert ("truthfulqa_mc2", "base") not in drift  # log-likelihood task: no generated text
    forgetting = {(r["task"], r["method"]): r for r in _csv(report_dir / "forgetting.csv")}
    assert forgetting["truthfulqa_mc2", "cft"]["verdict"] == "worse"
    assert float(forgetting["truthfulqa_mc2", "cft"]["p_adjusted"]) >= float(
        forgetting["truthfulqa_mc2", "cft"]["p_value"]
    )
    assert forgetting["truthfulqa_mc2", "cft"]["test"] == "sign-flip"
    assert forgetting["gpqa_diamond", "cft"]["test"] == "mcnemar"
    assert "math500" not in {task for task, _ in forgetting}  # reasoning, not forgetting


def test_flips_list_each_models_verdict(report_dir: Path) -> None:
    rows = _csv(report_dir / "flips" / "gpqa_diamond.csv")
    assert list(rows[0]) == ["item_id", "base", "sft", "cft", "cgd", "differs_from_base"]
    assert [r["item_id"] for r in rows[:3]] == ["rec000", "rec001", "rec002"]
    for row in rows:
        differs = {label for label in ("sft", "cft", "cgd") if row[label] != row["base"]}
        assert set(row["differs_from_base"].split()) == differs
    text = (report_dir / "flips" / "gpqa_diamond.csv").read_text()
    assert "question" not in text.lower()


def test_compute_table(report_dir: Path) -> None:
    rows = {r["method"]: r for r in _csv(report_dir / "compute.csv")}
    assert set(rows) == {"sft", "cft", "cgd"}
    assert rows["cgd"]["teacher_tokens"] == "8000" and rows["sft"]["teacher_tokens"] == "0"


def test_seeds_show_mean_and_spread(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(make_run(tmp_path, methods=("cgd",), seeds=(0, 1, 2)), out)
    rows = {(r["task"], r["model"]): r for r in _csv(out / "table.csv")}
    cgd = rows["math500", "cgd"]
    assert cgd["n_seeds"] == "3" and float(cgd["spread"]) >= 0 and cgd["ci_low"] == ""
    assert "±" in (out / "table.md").read_text()
    assert set(_csv(out / "flips" / "math500.csv")[0]) >= {"cgd@seed0", "cgd@seed1", "cgd@seed2"}


def test_no_training_skips_loss_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "loss.png").write_bytes(b"stale plot from an earlier report")
    write_report(make_run(tmp_path, training=False), out)
    assert not (out / "loss.png").exists()
    assert "No training" in (out / "compute.md").read_text()


def test_missing_eval_is_a_harness_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no evaluated models"):
        write_report(tmp_path / "empty", tmp_path / "out")


def test_report_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(report)
    run = make_run(tmp_path)
    result = CliRunner().invoke(app, [str(run), "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").exists()
    assert (
        json.loads((run / "config.json").read_text())["git_revision"]
        in (tmp_path / "r" / "table.md").read_text()
    )


def _shape_samples(label: str) -> dict[str, list[dict]]:
    """One or two items of every other record shape: list-valued IFEval verdicts, pass@1,
    GPQA chain-of-thought without text, answers without token counts."""
    good = label == "cgd"
    return {
        "ifeval": [
            {
                "item_id": f"if{i}",
                "response": "all lowercase text",
                "instruction_id_list": ["change_case:english_lowercase", "length_constraints:number_words"],
                "metrics": {"prompt_level_strict_acc": float(good), "inst_level_strict_acc": [True, good]},
            }
            for i in range(2)
        ],
        "humaneval": [
            {
                "item_id": "HumanEval/0",
                "response": "```python\ndef f():\n    return 1\n```",
                "completion_tokens": 12,
                "metrics": {"pass@1": float(good)},
            }
        ],
        "gpqa_diamond_cot": [
            {
                "item_id": "rec1",
                "extracted": "A" if good else None,
                "completion_tokens": 80,
                "metrics": {"exact_match": float(good)},
            }
        ],
        "aime24": [{"item_id": "2024-I-1", "response": "\\boxed{204}", "metrics": {"exact_match": 1.0}}],
    }


def test_every_benchmark_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METRICS, "ifeval", "prompt_level_strict_acc")
    monkeypatch.setitem(METRICS, "humaneval", "pass@1")
    monkeypatch.setitem(METRICS, "gpqa_diamond_cot", "exact_match")
    monkeypatch.setitem(METRICS, "aime24", "exact_match")
    run = tmp_path / "shapes"
    for label in ("base", "cgd"):
        write_eval(run, label, _shape_samples(label))
    results = read_json(run / "eval" / "cgd" / "results.json")
    results["results"]["ifeval"]["inst_level_strict_acc,none"] = 1.0
    atomic_write_json(run / "eval" / "cgd" / "results.json", results)
    out = tmp_path / "out"
    write_report(run, out)
    table = {(r["task"], r["metric"], r["model"]): r for r in _csv(out / "table.csv")}
    assert table["ifeval", "inst_level_strict_acc", "cgd"]["score"] == "100.00"  # micro average
    assert table["ifeval", "inst_level_strict_acc", "base"]["score"] == "50.00"
    assert table["humaneval", "pass@1", "cgd"]["best"] == "1"
    drift = {(r["task"], r["model"]): r for r in _csv(out / "drift.csv")}
    assert drift["ifeval", "base"]["ifeval_format_pct"] == "100.00"
    assert drift["gpqa_diamond_cot", "base"]["parseable_pct"] == "0.00"
    assert drift["gpqa_diamond_cot", "cgd"]["parseable_pct"] == "100.00"
    assert drift["gpqa_diamond_cot", "cgd"]["critique_pct"] == ""  # no text kept, nothing to read
    assert drift["aime24", "base"]["length_unit"] == "chars"
    assert not (out / "loss.png").exists() and (out / "drift.png").exists()


def test_base_only_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, methods=(), training=False)
    out = tmp_path / "out"
    write_report(run, out)
    assert "No trained methods" in (out / "summary.md").read_text()
    assert not (out / "drift.png").exists() and (out / "scores.png").exists()


def _sample_blob(html: str) -> dict:
    start = html.index('<script type="application/json" id="sample-data">')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_page_order_findings_first_config_last(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    order = [
        "findings",
        "results",
        "plots",
        "drift",
        "forgetting",
        "statistics",
        "compute",
        "samples",
        "config",
    ]
    positions = [html.index(f'<section id="{name}"') for name in order]
    assert positions == sorted(positions)
    for name in ("scores", "deltas", "measures", "loss"):
        assert f'<figure id="plot-{name}">' in html
        assert (report_dir / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    # Self-contained: nothing is fetched (the only URLs are in no src or href).
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_viewer_data_has_every_item_with_the_drift_flags(report_dir: Path) -> None:
    data = _sample_blob((report_dir / "report.html").read_text())
    assert data["models"] == ["base", "sft", "cft", "cgd"]
    tasks = {t["task"]: t for t in data["tasks"]}
    math = tasks["math500"]["items"]
    assert [i["id"] for i in math[:3]] == ["math500-0", "math500-1", "math500-2"] and len(math) == N_ITEMS
    for item in math:
        cft = item["m"]["cft"]
        critique = cft["r"].startswith("Critique:")
        # Critique-style answers box nothing here: the same detectors as the drift table flag both.
        assert cft.get("c") == (1 if critique else None) and cft.get("n") == (1 if critique else None)
        assert item["p"].startswith("Problem") and cft["v"] in (0.0, 1.0)
    for item in tasks["gpqa_diamond"]["items"]:
        assert "p" not in item and all("r" not in m for m in item["m"].values())
        assert all(m["x"] in ("A", "B") for m in item["m"].values())
    assert tasks["gpqa_diamond"]["redacted"] and not tasks["math500"]["redacted"]


def test_response_text_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    run = make_run(tmp_path, methods=("cgd",), training=False)
    hostile = "</script><script>alert(1)</script> & <b>"
    records = [json.loads(line) for line in (run / "eval" / "cgd" / "samples_math500.jsonl").open()]
    records[0]["response"] = hostile
    atomic_write_jsonl(run / "eval" / "cgd" / "samples_math500.jsonl", records)
    write_report(run, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "alert(1)</script>" not in html
    items = {t["task"]: t for t in _sample_blob(html)["tasks"]}["math500"]["items"]
    assert items[0]["m"]["cgd"]["r"] == hostile


def _texts(fig) -> list:
    from matplotlib.text import Text

    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


@pytest.mark.parametrize("kind", ["bars", "panels", "loss"])
def test_plots_are_readable_without_overlapping_labels(kind: str) -> None:
    from harness_app.report import plots

    names = [f"benchmark_{i} (inst_level_strict_acc)" if i % 3 == 0 else f"task_{i}" for i in range(11)]
    models = ["base", "sft", "distill-sft", "cft", "cgd", "refine-nocritique", "cgd-shuffled", "cgd-generic"]
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    if kind == "bars":
        series = {m: [plots.Bar(40.0 + i, 5.0, 6.0, i % 2 == 0) for i in range(len(names))] for m in models}
        fig = plots.grouped_hbars(
            names, series, "points", "Change vs base", colors, zero_line=True, margin=2.0
        )
    elif kind == "panels":
        values = {m: [50.0] * len(names) for m in models}
        fig = plots.measure_panels(names, [("parseable (%)", values), ("length (tokens)", values)], colors)
    else:
        curves = {m: ([1.0, 2.0, 3.0], [2.0, 1.5, 1.2]) for m in models}
        fig = plots.loss_curves(curves, colors, {"cgd": ([3.0], [1.4])})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    texts = _texts(fig)
    assert min(t.get_fontsize() for t in texts) >= plots.MIN_FONT
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts if t.get_text() != "*"]
    clashes = [
        (a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)
    ]
    assert not clashes
    # Shown at DISPLAY_DPI, the figure fits a laptop's page column.
    assert plots.display_width(plots.png(fig)) <= 1100


def test_measures_plot_draws_each_benchmarks_own_measure_on_its_benchmark() -> None:
    from harness.drift import DriftRow
    from harness_app.report.build import _measure_panels, _measures_caption

    rows = [
        DriftRow("ifeval", "base", 10, 0.9, 50.0, "tokens", extras={"ifeval_format": 0.8}),
        DriftRow("math500", "base", 10, 0.7, 60.0, "tokens", extras={"ifeval_format": None}),
    ]
    panel_list = _measure_panels(rows)
    panels = dict(panel_list)
    assert panels["IFEval format (%)"] == {"base": [80.0, None]}
    assert list(panels)[0] == "parseable final answer (%)" and list(panels)[-1] == "mean length (tokens)"
    assert "IFEval format" in _measures_caption(panel_list)
    # A measure no row has a level for gets no empty panel.
    assert "IFEval format (%)" not in dict(_measure_panels(rows[1:]))
