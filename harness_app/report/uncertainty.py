"""The refinement-uncertainty section: analysis/uncertainty.json (cgd/uncertainty.py) as tables
and a plot. A run without the analysis gets no section."""

from __future__ import annotations

from dataclasses import dataclass

from harness import layout
from harness.io import read_json, to_csv
from harness.rundata import RunData
from harness.stats import interval_text
from harness_app.report import plots
from harness_app.report.tables import Table

SUMMARY = layout.UNCERTAINTY
PROMPTS = {"x": "given x", "xyc": "given (x, y', c)"}
MEASURE_NAMES = {"entropy": "entropy", "nll": "NLL"}


@dataclass
class Section:
    parts: list[Table | str]
    plot: bytes
    csv: str


def _cell(c: dict | None) -> str:
    return "" if not c else interval_text(c["mean"], c["low"], c["high"])


def _delta(c: dict | None) -> str:
    return (
        "" if not c else f"{interval_text(c['delta'], c['low'], c['high'], signed=True)} p={c['p_value']:.2g}"
    )


def section(run: RunData, colors: dict[str, str]) -> Section | None:
    path = run.root / SUMMARY
    if not path.exists():
        return None
    summary = read_json(path)
    n = summary["n_problems"]
    columns = ["model"]
    for name in MEASURE_NAMES.values():
        columns += [f"{name} {PROMPTS['x']}", f"{name} {PROMPTS['xyc']}", f"{name}: critique's change"]
    columns.append("n")
    rows = []
    for m in summary["models"]:
        row = [m["label"]]
        for measure in MEASURE_NAMES:
            cells = m[measure]
            row += [_cell(cells["x"]), _cell(cells["xyc"]), _delta(cells.get("critique_effect"))]
        row.append(str(m["nll"]["x"]["n"]))
        rows.append(row)
    per_model = Table(
        columns,
        rows,
        caption=(
            f"Mean per-token entropy and negative log-likelihood (nats) of the teacher's refined answer ŷ "
            f"under each model, on {n} validation problems, with 95 % Student-t intervals over problems. "
            "The critique's change is (x, y', c) minus x, paired over problems (sign-flip p, unadjusted). "
            "Lower is less uncertain. See docs/analysis.md."
        ),
    )
    comparison_rows = [
        [
            f"{c['model']} vs {c['against']}",
            MEASURE_NAMES[c["measure"]],
            PROMPTS[c["condition"]],
            _delta(c),
            str(c["n"]),
        ]
        for c in summary["comparisons"]
    ]
    parts: list[Table | str] = [per_model]
    if comparison_rows:
        parts.append(
            Table(
                ["comparison", "measure", "prompt", "difference [95 % CI] p", "n"],
                comparison_rows,
                caption=(
                    "Paired over problems (a method's seeds averaged per problem): sign-flip test and "
                    "paired Student-t interval. Not part of the findings' adjusted family."
                ),
            )
        )
    return Section(parts, _plot(summary, colors), _csv(summary))


def _plot(summary: dict, colors: dict[str, str]) -> bytes:
    categories = [f"{MEASURE_NAMES[m]} {PROMPTS[c]}" for m in MEASURE_NAMES for c in PROMPTS]
    series = {}
    for model in summary["models"]:
        bars = []
        for measure in MEASURE_NAMES:
            for condition in PROMPTS:
                c = model[measure][condition]
                low = c["mean"] if c["low"] is None else c["low"]  # one problem: no interval
                high = c["mean"] if c["high"] is None else c["high"]
                bars.append(plots.Bar(c["mean"], c["mean"] - low, high - c["mean"]))
        series[model["label"]] = bars
    return plots.png(
        plots.grouped_hbars(
            categories,
            series,
            "nats per token of ŷ",
            "Refinement uncertainty with 95 % CI (lower: surer)",
            colors,
        )
    )


def _csv(summary: dict) -> str:
    rows = [
        [m["label"], measure, condition, c["n"], c["mean"], c["low"], c["high"]]
        for m in summary["models"]
        for measure in MEASURE_NAMES
        for condition, c in ((k, m[measure][k]) for k in PROMPTS)
    ]
    return to_csv(["model", "measure", "prompt", "n", "mean", "low", "high"], rows)
