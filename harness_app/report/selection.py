"""The checkpoint-selection section: which step each trained model's evaluated weights come from,
and its validation curve (training/selection.py). Runs that never scored validation get no section."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure

from harness.rundata import RunData
from harness_app.report.plots import png  # plots.py's renderer: same DPI and metadata
from harness_app.report.tables import Table


@dataclass
class Section:
    table: Table
    plot: bytes | None


def _point(p: dict) -> str:
    low, high = p["interval"]
    return f"{100 * p['acc']:.1f} [{100 * low:.1f}, {100 * high:.1f}] ({p['correct']}/{p['n']})"


def section(run: RunData, colors: dict[str, str]) -> Section | None:
    rows, curves = [], {}
    for label in run.train_labels:
        summary = run.train_summary(label) or {}
        curve = summary.get("val_curve")
        if not curve:
            continue
        chosen = summary["selected_step"]
        at = next(p for p in curve if p["step"] == chosen)
        rows.append(
            [
                label,
                str(summary.get("select")),
                f"{chosen} of {summary.get('steps')}",
                _point(at),
                "; ".join(f"{p['step']}: {p['correct']}/{p['n']}" for p in curve),
            ]
        )
        curves[label] = curve
    if not rows:
        return None
    table = Table(
        ["model", "rule", "chosen step", "validation accuracy at it, % [95 % CI]", "curve (step: correct/n)"],
        rows,
        caption=(
            "Evaluation loads the chosen step's weights. Validation problems are held out from training "
            "and scored like the math benchmarks (same prompt, greedy, same checker); Clopper–Pearson "
            "intervals. Ties go to the later step."
        ),
    )
    return Section(table, _plot(curves, colors) if any(len(c) > 1 for c in curves.values()) else None)


def _plot(curves: dict[str, list[dict]], colors: dict[str, str]) -> bytes:
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    for label, curve in curves.items():
        steps = [p["step"] for p in curve]
        acc = [100 * p["acc"] for p in curve]
        low = [100 * p["interval"][0] for p in curve]
        high = [100 * p["interval"][1] for p in curve]
        ax.plot(steps, acc, marker="o", label=label, color=colors.get(label), linewidth=1.4)
        ax.fill_between(steps, low, high, color=colors.get(label), alpha=0.12)
    ax.set_xlabel("step")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Validation accuracy per checkpoint (95 % CI)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return png(fig)
