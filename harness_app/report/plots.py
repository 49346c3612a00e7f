"""Report figures, sized to be read at 100 % zoom on a laptop screen.

Figures are built with matplotlib's object API and rendered by the Agg canvas, never through
pyplot, so no GUI backend or global figure state is involved (safe on headless CI machines).

Sizes: a figure is rendered at `RENDER_DPI` and the page shows it at `DISPLAY_DPI` (see
`display_width`), so a font of N points in the figure is N points on screen and stays sharp on
high-density screens. Every text is at least `MIN_FONT` points; categories run down the y axis
(horizontal bars), where long benchmark names cannot collide the way rotated x labels do.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

RENDER_DPI = 150
DISPLAY_DPI = 100
MIN_FONT = 10.0
# Wide enough for a 4-model legend in one row, narrow enough for a 13-inch screen's page column.
WIDTH_IN = 10.0
_FONTS = {
    "font.size": 11,
    "axes.titlesize": 12.5,
    "axes.labelsize": 11,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "figure.titlesize": 13,
}


@dataclass(frozen=True)
class Bar:
    """One bar: value with the distances down/up to its error-bar ends (0 when unknown)."""

    value: float
    err_low: float = 0.0
    err_high: float = 0.0
    marked: bool = False


@contextmanager
def _style() -> Iterator[None]:
    # rc_context applies at artist creation, so the figure must be built inside it.
    with matplotlib.rc_context(_FONTS):
        yield


def png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=RENDER_DPI, metadata={"Software": None})
    return buf.getvalue()


def display_width(png_bytes: bytes) -> int:
    """CSS pixels at which the page shows a figure so that its points are screen points."""
    width = struct.unpack(">I", png_bytes[16:20])[0]  # the PNG IHDR chunk
    return round(width * DISPLAY_DPI / RENDER_DPI)


def _height(categories: int, series: int) -> float:
    """Figure height in inches: bars get thinner as series multiply, so a page stays scannable."""
    per_bar = min(0.16, 1.6 / max(1, series))
    return 1.5 + categories * (per_bar * max(1, series) + 0.24)


def _legend(fig: Figure, ax, extra: int = 0) -> None:
    """Above the axes, in as few rows as fit, so it never covers a bar."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside upper center", ncols=min(len(labels), 5 + extra), frameon=False
        )


def grouped_hbars(
    categories: list[str],
    series: dict[str, list[Bar | None]],
    xlabel: str,
    title: str,
    colors: dict[str, str],
    zero_line: bool = False,
    margin: float | None = None,
) -> Figure:
    """One row of bars per category (top to bottom), one colour per series, asymmetric error bars.

    Marked bars (significant changes) get a star beyond their error bar; `margin` draws the
    non-inferiority margin at -margin.
    """
    n_series = max(1, len(series))
    height = _height(len(categories), n_series)
    with _style():
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        ax = fig.add_subplot()
        step = 0.8 / n_series
        y = np.arange(len(categories))
        for i, (name, bars) in enumerate(series.items()):
            pos = y - 0.4 + step * (i + 0.5)
            present = [(p, b) for p, b in zip(pos, bars) if b is not None]
            if not present:
                continue
            ps, bs = zip(*present)
            ax.barh(
                ps,
                [b.value for b in bs],
                step * 0.92,
                label=name,
                color=colors.get(name),
                xerr=[[b.err_low for b in bs], [b.err_high for b in bs]],
                capsize=2.5,
                error_kw={"elinewidth": 1.0},
            )
            for p, b in present:
                if b.marked:
                    end = b.value + b.err_high if b.value >= 0 else b.value - b.err_low
                    ax.annotate(
                        "*",
                        (end, p),
                        xytext=(4 if b.value >= 0 else -4, 0),
                        textcoords="offset points",
                        ha="left" if b.value >= 0 else "right",
                        va="center",
                        fontsize=12,
                    )
        if zero_line:
            ax.axvline(0.0, color="black", linewidth=0.8)
        if margin:
            # The non-inferiority margin: a drop whose interval stays right of it is not forgetting.
            ax.axvline(
                -margin,
                color="firebrick",
                linewidth=1.2,
                linestyle="--",
                label=f"non-inferiority margin (-{margin:g} pts)",
            )
        ax.set_yticks(y, categories)
        ax.set_ylim(len(categories) - 0.5, -0.5)  # first category on top, as in the table
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        ax.grid(axis="x", alpha=0.3)
        _legend(fig, ax)
    return fig


def measure_panels(
    tasks: list[str],
    panels: list[tuple[str, dict[str, list[float | None]]]],
    colors: dict[str, str],
) -> Figure:
    """Side-by-side panels sharing the task axis: one drift measure each (a title ending in "(%)"
    is a share, drawn on 0-100), one bar per model."""
    n_series = max((len(series) for _, series in panels), default=1)
    height = _height(len(tasks), n_series)
    with _style():
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        y = np.arange(len(tasks))
        step = 0.8 / max(1, n_series)
        for ax, (name, series) in zip(axes, panels):
            for i, (model, values) in enumerate(series.items()):
                pos = y - 0.4 + step * (i + 0.5)
                present = [(p, v) for p, v in zip(pos, values) if v is not None]
                if present:
                    ps, vs = zip(*present)
                    ax.barh(ps, vs, step * 0.92, label=model, color=colors.get(model))
            ax.set_title(name)
            ax.grid(axis="x", alpha=0.3)
            if name.endswith("(%)"):
                ax.set_xlim(0, 100)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        axes[0].set_yticks(y, tasks)
        axes[0].set_ylim(len(tasks) - 0.5, -0.5)
        _legend(fig, axes[0])
    return fig


def loss_curves(
    curves: dict[str, tuple[list[float], list[float]]],
    colors: dict[str, str],
    validation: dict[str, tuple[list[float], list[float]]] | None = None,
) -> Figure:
    """Training loss against step, one line per trained model; validation loss dashed when logged."""
    with _style():
        fig = Figure(figsize=(WIDTH_IN * 0.8, 4.6), layout="constrained")
        ax = fig.add_subplot()
        for name, (steps, losses) in curves.items():
            ax.plot(
                steps, losses, label=name, color=colors.get(name), linewidth=1.6, marker="o", markersize=3
            )
        for name, (steps, losses) in (validation or {}).items():
            ax.plot(steps, losses, label=f"{name} (validation)", color=colors.get(name), linestyle="--")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.set_title("Training loss per method" + (" (dashed: validation)" if validation else ""), loc="left")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        _legend(fig, ax)
    return fig
