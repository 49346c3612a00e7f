"""The report's content as tables: main scores, drift, forgetting, compute, per-item flips.

Each builder returns a display `Table` (Markdown/LaTeX/HTML) and, where numbers matter to a
script, plain CSV rows. Scores are shown in percent with one decimal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from harness.drift import Change, DriftRow, added_measures, benchmark_extras, format_p
from harness.io import to_csv
from harness.rundata import BASE, RunData, metric_label
from harness_app.report.claims import interval_text, mde_text
from harness_app.report.tables import Table
from harness_app.scores import ModelScore, model_score

DASH = "-"


@dataclass(frozen=True)
class Section:
    table: Table
    csv: str


def _best_rows(values: list[float | None]) -> set[int]:
    """Indices of the best value; compared at display precision so ties look like ties."""
    shown = [round(v, 1) if v is not None else None for v in values]
    present = [v for v in shown if v is not None]
    return {i for i, v in enumerate(shown) if present and v == max(present)}


def main_table(run: RunData, changes: list[Change]) -> Section:
    """Benchmarks x models: score with 95 % CI (or ± spread across seeds), delta vs base; best bold."""
    groups = list(run.groups)
    by_key = {(c.method, c.task, c.quantity): c for c in changes}
    base_present = BASE in run.groups
    columns = [
        "benchmark",
        "n",
        *(g if len(run.groups[g]) == 1 else f"{g} ({len(run.groups[g])} seeds)" for g in groups),
    ]
    rows, bold, csv_rows = [], set(), []
    for r, (task, metric) in enumerate(run.columns()):
        scores = [model_score(run, g, task, metric) for g in groups]
        base = scores[groups.index(BASE)] if base_present else None
        best = _best_rows([s.mean if s else None for s in scores])
        bold |= {(r, 2 + i) for i in best}
        cells = []
        for i, (group, score) in enumerate(zip(groups, scores)):
            change = by_key.get((group, task, metric))
            delta = score.mean - base.mean if score and base and group != BASE else None
            cells.append(_cell_text(score, delta, change))
            csv_rows.append(
                [
                    task,
                    metric,
                    group,
                    *_score_csv(score),
                    _num(delta),
                    _num(change.p_value if change else None, 4),
                    _num(change.p_adjusted if change else None, 4),
                    change.verdict if change else "",
                    _num(100 * change.mde if change and change.mde is not None else None),
                    _num(_times100(score.seed_share) if score else None),
                    int(i in best),
                ]
            )
        n_items = max((s.n_items for s in scores if s), default=0)
        rows.append([metric_label(task, metric), str(n_items), *cells])
    caption = (
        "Scores in percent with 95 % intervals (Clopper-Pearson for 0/1 verdicts, bootstrap for "
        "continuous scores; mean ± sd across seeds for several seeds); (delta vs base, * = adjusted "
        "p < alpha over the report's family of comparisons); best per benchmark in bold."
    )
    csv_columns = [
        "task",
        "metric",
        "model",
        "n_items",
        "n_seeds",
        "score",
        "ci_low",
        "ci_high",
        "spread",
        "delta_vs_base",
        "p_vs_base",
        "p_adjusted",
        "verdict",
        "mde_points",
        "seed_share_pct",
        "best",
    ]
    return Section(Table(columns, rows, bold, caption), to_csv(csv_columns, csv_rows))


def _cell_text(score: ModelScore | None, delta: float | None, change: Change | None) -> str:
    if score is None:
        return DASH
    if delta is None:
        return score.text()
    star = "*" if change and change.significant else ""
    return f"{score.text()} ({delta:+.1f}{star})"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _score_csv(score: ModelScore | None) -> list[object]:
    if score is None:
        return ["", "", "", "", "", ""]
    return [
        score.n_items,
        score.n_seeds,
        _num(score.mean),
        _num(score.low),
        _num(score.high),
        _num(score.spread),
    ]


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.1f}"


def drift_table(rows: list[DriftRow]) -> Section:
    """A column per drift measure: the library's, each one a study added (after parseable) and each
    benchmark's own (after length)."""
    added, extras = added_measures(), tuple(benchmark_extras().values())
    columns = [
        "benchmark",
        "model",
        "n",
        "parseable %",
        *(f"{m.heading} %" for m in added),
        "mean length",
        *(f"{e.heading} %" for e in extras),
        "unclosed thinking %",
    ]
    cells = [
        [
            r.task,
            r.model,
            str(r.n),
            _pct(r.parseable),
            *(_pct(r.added.get(m.name)) for m in added),
            DASH if r.mean_length is None else f"{r.mean_length:.1f} {r.length_unit}",
            *(_pct(r.extras.get(e.name)) for e in extras),
            _pct(r.unclosed_thinking),
        ]
        for r in rows
    ]
    csv_rows = [
        [
            r.task,
            r.model,
            r.n,
            _num(_times100(r.parseable)),
            *(_num(_times100(r.added.get(m.name))) for m in added),
            _num(r.mean_length),
            r.length_unit,
            *(_num(_times100(r.extras.get(e.name))) for e in extras),
            _num(_times100(r.unclosed_thinking)),
        ]
        for r in rows
    ]
    csv_columns = [
        "task",
        "model",
        "n",
        "parseable_pct",
        *(f"{m.name}_pct" for m in added),
        "mean_length",
        "length_unit",
        *(f"{e.name}_pct" for e in extras),
        "unclosed_thinking_pct",
    ]
    caption = (
        "Format drift per generative benchmark (rates in percent of items). Unclosed thinking: responses "
        "whose thinking (eval.reasoning_end) never ended, scored no_answer."
    )
    return Section(Table(columns, cells, caption=caption), to_csv(csv_columns, csv_rows))


def _times100(value: float | None) -> float | None:
    return None if value is None else 100 * value


def forgetting_table(changes: list[Change]) -> Section:
    columns = [
        "benchmark",
        "method",
        "base",
        "method score",
        "delta",
        "95% CI of delta",
        "p",
        "adjusted p",
        "MDE",
        "test",
        "matched",
        "verdict",
    ]
    rows, csv_rows = [], []
    for c in changes:
        result = c.comparison.result
        rows.append(
            [
                c.label,
                c.method,
                f"{100 * c.base:.1f}",
                f"{100 * c.value:.1f}",
                f"{100 * c.delta:+.1f}",
                interval_text(c),
                format_p(c.p_value),
                format_p(c.p_adjusted),
                mde_text(c),
                result.test if result else DASH,
                str(c.comparison.matched),
                c.verdict,
            ]
        )
        csv_rows.append(
            [
                c.task,
                c.quantity,
                c.method,
                _num(100 * c.base),
                _num(100 * c.value),
                _num(100 * c.delta),
                _num(100 * result.ci_low) if result else "",
                _num(100 * result.ci_high) if result else "",
                _num(c.p_value, 4),
                _num(c.p_adjusted, 4),
                _num(100 * c.mde if c.mde is not None else None),
                result.test if result else "",
                c.comparison.matched,
                c.verdict,
            ]
        )
    csv_columns = [
        "task",
        "metric",
        "method",
        "base",
        "score",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "mde_points",
        "test",
        "matched",
        "verdict",
    ]
    caption = (
        "Forgetting: general benchmarks, each method vs base on matched items (points); verdicts against "
        "the non-inferiority margin (docs/statistics.md)."
    )
    bold = {(r, 11) for r, c in enumerate(changes) if c.verdict in ("worse", "inconclusive")}
    return Section(Table(columns, rows, bold, caption), to_csv(csv_columns, csv_rows))


def seed_table(run: RunData) -> Section | None:
    """Several seeds: each method's mean ± sd across seeds and how much of the variance is the seed's."""
    if all(len(labels) == 1 for labels in run.groups.values()):
        return None
    rows = []
    for task, metric in run.columns():
        for group, labels in run.groups.items():
            score = model_score(run, group, task, metric)
            if score is None or len(labels) < 2:
                continue
            share = DASH if score.seed_share is None else f"{100 * score.seed_share:.0f} %"
            rows.append(
                [
                    metric_label(task, metric),
                    group,
                    str(score.n_seeds),
                    f"{score.mean:.1f}",
                    f"{score.spread:.1f}",
                    share,
                ]
            )
    columns = ["benchmark", "method", "seeds", "mean", "sd across seeds", "seed share of variance"]
    caption = (
        "Training-seed variance: the seed share is the between-seed variance left after item sampling's "
        "(one-way random effects); comparisons with several seeds use a hierarchical bootstrap."
    )
    return Section(Table(columns, rows, caption=caption), to_csv(columns, rows))


_COMPUTE_FIELDS = ("tokens_trained", "teacher_tokens", "wall_seconds", "final_loss")


def compute_table(run: RunData) -> Section:
    rows = []
    for label in run.train_labels:
        summary = run.train_summary(label)
        if summary is not None:
            rows.append([label, *(summary.get(f) for f in _COMPUTE_FIELDS)])
    columns = ["method", *_COMPUTE_FIELDS]
    cells = [[str(row[0]), *(_compute_text(v) for v in row[1:])] for row in rows]
    caption = "Compute per trained model: training tokens, teacher tokens, wall time (s), final loss."
    return Section(Table(columns, cells, caption=caption), to_csv(columns, rows))


def _compute_text(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return DASH
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _natural_key(item_id: str) -> list[object]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", item_id)]


def _verdict_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value in (0.0, 1.0) else f"{value:.4f}"


def flips(run: RunData) -> dict[str, str]:
    """Task -> CSV of every item's headline verdict per model, and which models differ from base."""
    out = {}
    for task in run.tasks:
        metric = run.headline(task)
        per_label = {label: run.item_scores(label, task, metric) for label in run.labels}
        items = sorted(set().union(*per_label.values()), key=_natural_key)
        if not items:
            continue
        rows = []
        for item in items:
            verdicts = {label: scores.get(item) for label, scores in per_label.items()}
            base = verdicts.get(BASE)
            changed = [
                label
                for label, v in verdicts.items()
                if label != BASE and base is not None and v is not None and v != base
            ]
            rows.append([item, *(_verdict_text(verdicts[label]) for label in run.labels), " ".join(changed)])
        out[task] = to_csv(["item_id", *run.labels, "differs_from_base"], rows)
    return out


def header_markdown(run: RunData, title: str) -> str:
    return f"# {title}\n\nRun `{run.run_id}` · git revision `{run.git_revision}` · seeds {_seeds(run)}\n\n"


CONFIG_MARKER = "\n<details><summary>Resolved config"


def footer_markdown(run: RunData) -> str:
    """Every Markdown report ends with the resolved config (after the results a reader came for)."""
    config = json.dumps(run.config, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return f"{CONFIG_MARKER}</summary>\n\n```json\n{config}\n```\n\n</details>\n"


def without_config(markdown: str) -> str:
    """A Markdown report as a terminal shows it: the resolved config stays in the file."""
    return markdown.split(CONFIG_MARKER)[0].rstrip() + "\n"


def _seeds(run: RunData) -> str:
    seeds = run.config.get("seeds")
    return ", ".join(str(s) for s in seeds) if isinstance(seeds, list) and seeds else "unknown"


def header_latex(run: RunData) -> str:
    config = json.dumps(run.config, sort_keys=True, ensure_ascii=False, default=str)
    return f"% run {run.run_id}, git revision {run.git_revision}\n% resolved config: {config}\n"
