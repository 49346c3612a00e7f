"""Report figures as PNG bytes.

Figures are built with matplotlib's object API and rendered by the Agg canvas, never through
pyplot, so no GUI backend or global figure state is involved (safe on headless CI machines).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 110


@dataclass(frozen=True)
class Bar:
    """One bar: value with the distances down/up to its error-bar ends (0 when unknown)."""

    value: float
    err_low: float = 0.0
    err_high: float = 0.0
    marked: bool = False


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def grouped_bars(
    categories: list[str],
    series: dict[str, list[Bar | None]],
    ylabel: str,
    title: str,
    colors: dict[str, str],
    zero_line: bool = False,
    margin: float | None = None,
) -> bytes:
    """Bars grouped per category, one colour per series, with asymmetric error bars.

    Marked bars (significant changes) get a star beyond their error bar.
    """
    fig = Figure(figsize=(max(6.0, 1.2 * len(categories) * max(1, len(series)) / 2), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for i, (name, bars) in enumerate(series.items()):
        pos = x - 0.4 + width * (i + 0.5)
        present = [(p, b) for p, b in zip(pos, bars) if b is not None]
        if not present:
            continue
        ps, bs = zip(*present)
        values = [b.value for b in bs]
        ax.bar(
            ps,
            values,
            width,
            label=name,
            color=colors.get(name),
            yerr=[[b.err_low for b in bs], [b.err_high for b in bs]],
            capsize=3,
        )
        for p, b in present:
            if b.marked:
                top = b.value + b.err_high if b.value >= 0 else b.value - b.err_low
                ax.annotate("*", (p, top), ha="center", va="bottom" if b.value >= 0 else "top", fontsize=12)
    if zero_line:
        ax.axhline(0.0, color="black", linewidth=0.8)
    if margin:
        # The non-inferiority margin: a drop whose interval stays above it is not forgetting.
        ax.axhline(-margin, color="firebrick", linewidth=1.0, linestyle="--")
    ax.set_xticks(x, categories, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def loss_curves(curves: dict[str, tuple[list[float], list[float]]], colors: dict[str, str]) -> bytes:
    """Training loss against step, one line per trained model."""
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    for name, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=name, color=colors.get(name), linewidth=1.4)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss per method")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)
