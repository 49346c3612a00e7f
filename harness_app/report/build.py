"""`write_report(run_dir, out_dir)`: every report file for one run directory, written atomically.

Tables (md/csv/tex) depend only on the run's files and fixed bootstrap seeds, so regenerating a
report from the same run gives byte-identical tables.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cgd.hypotheses import HYPOTHESES
from harness import drift, layout
from harness.findings import AnalysisConfig, analyse
from harness.io import atomic_write_bytes, atomic_write_text, read_json, to_csv
from harness.rundata import RunData, method_of, metric_label
from harness_app.report import (
    claims,
    contamination,
    crossrun,
    leakage,
    plots,
    sections,
    selection,
    uncertainty,
    viewer,
)
from harness_app.report.graders import grader_disagreement
from harness_app.report.html import Part, Plot, Samples, Section, render_page
from harness_app.report.tables import Table, to_latex, to_markdown
from harness_app.scores import model_score


def _colors(run: RunData) -> dict[str, str]:
    """One colour per model across every plot; a method's seeds share its colour."""
    by_group = {group: f"C{i % 10}" for i, group in enumerate(run.groups)}
    return {**by_group, **{label: by_group.get(method_of(label), "C9") for label in run.train_labels}}


def _bar(mean: float, low: float | None, high: float | None) -> plots.Bar:
    if low is None or high is None:
        return plots.Bar(mean)
    return plots.Bar(mean, mean - low, high - mean)


def _score_plot(run: RunData):
    columns = run.columns()
    series = {}
    for group in run.groups:
        bars = []
        for task, metric in columns:
            score = model_score(run, group, task, metric)
            if score is None:
                bars.append(None)
            elif score.spread is not None:
                bars.append(plots.Bar(score.mean, score.spread, score.spread))
            else:
                bars.append(_bar(score.mean, score.low, score.high))
        series[group] = bars
    labels = [metric_label(t, m) for t, m in columns]
    return plots.grouped_hbars(labels, series, "score (%)", "Scores per benchmark (95 % CI)", _colors(run))


def _delta_bars(changes: list[drift.Change]) -> tuple[list[str], dict[str, list[plots.Bar | None]]]:
    categories = list(dict.fromkeys(c.label for c in changes))
    series: dict[str, list[plots.Bar | None]] = {}
    for c in changes:
        bars = series.setdefault(c.method, [None] * len(categories))
        result = c.comparison.result
        low, high = (c.delta - result.ci_low, result.ci_high - c.delta) if result else (0.0, 0.0)
        bars[categories.index(c.label)] = plots.Bar(100 * c.delta, 100 * low, 100 * high, c.significant)
    return categories, series


def _deltas_plot(run: RunData, changes: list[drift.Change], margin: float):
    """Every method's headline-score change vs base on every benchmark, with the margin drawn."""
    headline = [c for c in changes if c.is_score and c.quantity == run.headline(c.task)]
    if not headline:
        return None
    categories, series = _delta_bars(headline)
    return plots.grouped_hbars(
        categories,
        series,
        "change vs base (points, 95 % CI)",
        "Change vs base per benchmark (* significant after adjustment)",
        _colors(run),
        zero_line=True,
        margin=margin,
    )


def _drift_plot(run: RunData, changes: list[drift.Change], margin: float):
    if not changes:
        return None
    categories, series = _delta_bars(changes)
    return plots.grouped_hbars(
        categories,
        series,
        "change vs base (points, 95 % CI)",
        "Forgetting: general benchmarks vs base (* significant after adjustment)",
        _colors(run),
        zero_line=True,
        margin=margin,
    )


# A drift panel: its title, and per model one level per task (None: no bar).
Panels = list[tuple[str, dict[str, list[float | None]]]]


def _measure_panels(rows: list[drift.DriftRow]) -> Panels:
    """One panel per drift measure with a level somewhere: parseable, each measure a study adds,
    each benchmark's own (bars only on its benchmark's row), then mean length."""
    tasks = list(dict.fromkeys(r.task for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    by_key = {(r.task, r.model): r for r in rows}

    def values(get) -> dict[str, list[float | None]]:
        return {m: [get(by_key[t, m]) if (t, m) in by_key else None for t in tasks] for m in models}

    def share(get) -> dict[str, list[float | None]]:
        return values(lambda r: None if (v := get(r)) is None else 100 * v)

    panels = [("parseable final answer (%)", share(lambda r: r.parseable))]
    panels += [(f"{m.label} (%)", share(lambda r, n=m.name: r.added.get(n))) for m in drift.added_measures()]
    panels += [
        (f"{e.heading} (%)", share(lambda r, n=e.name: r.extras.get(n)))
        for e in drift.benchmark_extras().values()
        if any(r.extras.get(e.name) is not None for r in rows)
    ]
    units = {r.length_unit for r in rows if r.length_unit}
    if len(units) == 1:
        panels.append((f"mean length ({units.pop()})", values(lambda r: r.mean_length)))
    return panels


def _measures_plot(run: RunData, rows: list[drift.DriftRow], panels: Panels):
    """Format drift levels per generative benchmark and model, a panel per measure."""
    if not rows:
        return None
    return plots.measure_panels(list(dict.fromkeys(r.task for r in rows)), panels, _colors(run))


def _measures_caption(panels: Panels) -> str:
    titles = [title.removesuffix(" (%)") for title, _ in panels]
    return "Format drift per generative benchmark and model: " + "; ".join(titles) + "."


def _points(rows: list[dict], key: str) -> tuple[list[float], list[float]] | None:
    points = [
        (float(r["step"]), float(r[key]))
        for r in rows
        if isinstance(r.get("step"), (int, float)) and isinstance(r.get(key), (int, float))
    ]
    return ([p[0] for p in points], [p[1] for p in points]) if points else None


def _loss_plot(run: RunData):
    curves, validation = {}, {}
    for label in run.train_labels:
        log = run.train_log(label)
        if train := _points(log, "loss"):
            curves[label] = train
        # Validation rows, where a trainer logs them, carry eval_loss (transformers' name).
        if val := _points(log, "eval_loss"):
            validation[label] = val
    return plots.loss_curves(curves, _colors(run), validation) if curves else None


def _png(figure) -> bytes | None:
    return None if figure is None else plots.png(figure)


def _meta(run: RunData) -> str:
    seeds = run.config.get("seeds")
    seed_text = ", ".join(map(str, seeds)) if isinstance(seeds, list) and seeds else "unknown"
    profile = run.config.get("profile")
    return (
        f"Run {run.run_id} · git revision {run.git_revision} · seeds {seed_text}"
        + (f" · profile {profile}" if profile else "")
        + f" · models {', '.join(run.labels)}"
    )


def _leakage(run: RunData) -> Table | None:
    """The leakage statistics each critique dataset recorded at build time (data/<method>.meta.json)."""
    metas = {}
    for path in sorted((run.root / layout.DATA).glob(f"*{layout.META_SUFFIX}")):
        meta = read_json(path)
        if meta.get("leakage"):
            metas[path.name.removesuffix(layout.META_SUFFIX)] = meta
    return leakage.leakage_rows(metas) if metas else None


def _markdown(run: RunData, title: str, parts: list[Table | str]) -> str:
    body = [
        to_markdown(p) + (f"\n{p.caption}\n" if p.caption else "") if isinstance(p, Table) else p + "\n"
        for p in parts
    ]
    return sections.header_markdown(run, title) + "\n".join(body) + sections.footer_markdown(run)


NO_TRAINING = "No training in this run."
NO_METHODS = "No trained methods to compare against base."


CROSS_RUN = (
    "A report over several runs (harness_app/report/crossrun.py): each model is one run's variant, named after "
    "the config keys the runs differ in, scored on the items every run evaluated. The paper's hypotheses name "
    "plain methods and are not tested here; each variant against base is below, and variant against variant "
    "under Across runs."
)


def report_files(
    run: RunData, analysis_config: AnalysisConfig | None = None, cross_run: bool = False
) -> dict[str, str | bytes | None]:
    """Relative path -> content of every report file; None marks a file this run has nothing for.
    `cross_run`: `run` is crossrun.merge's directory, and the variant-vs-variant section is added."""
    cfg = analysis_config or AnalysisConfig.from_config(run.config)
    analysis = analyse(run, cfg, HYPOTHESES)
    changes = analysis.changes
    main = sections.main_table(run, [c for c in changes if c.is_score])
    drift_levels = drift.format_drift(run)
    drift_rows = sections.drift_table(drift_levels)
    measure_panels = _measure_panels(drift_levels)
    forgetting = drift.forgetting(run, cfg.alpha, changes)
    forget = sections.forgetting_table(forgetting)
    compute = sections.compute_table(run)
    compute_parts: list[Table | str] = [compute.table] if compute.table.rows else [NO_TRAINING]
    summaries = list(drift.paragraphs(run, cfg.alpha, changes).values()) or [NO_METHODS]
    findings_intro, findings = claims.intro(analysis), claims.findings_table(analysis.findings)
    if cross_run:
        findings_intro = f"{CROSS_RUN} {findings_intro}"
    family, family_rows = claims.family_table(analysis)
    seeds = sections.seed_table(run)
    graders = grader_disagreement(run)
    main_parts: list[Table | str] = [main.table] + ([seeds.table] if seeds else [])
    unc, sel = uncertainty.section(run, _colors(run)), selection.section(run, _colors(run))
    leaks = _leakage(run)
    contam = contamination.section(run)
    stats_parts: list[Table | str] = (
        [family] if family.rows else ["No comparisons: the run has no trained methods."]
    )
    files: dict[str, str | bytes | None] = {
        "findings.md": _markdown(run, "Findings", [findings_intro, findings]),
        "table.md": _markdown(run, "Results", main_parts),
        "table.csv": main.csv,
        "table.tex": sections.header_latex(run) + to_latex(main.table),
        "seeds.csv": seeds.csv if seeds else None,
        "drift.md": _markdown(run, "Format drift and forgetting", [drift_rows.table, forget.table]),
        "drift.csv": drift_rows.csv,
        "forgetting.csv": forget.csv,
        "comparisons.md": _markdown(run, "Statistics: every comparison", [findings_intro, family]),
        "comparisons.csv": to_csv(claims.FAMILY_CSV_COLUMNS, family_rows),
        "graders.md": _markdown(run, "Math graders: where they disagree", [graders.table])
        if graders
        else None,
        "graders.csv": graders.csv if graders else None,
        "compute.md": _markdown(run, "Compute", compute_parts),
        "leakage.md": _markdown(run, "Critique leakage", [leaks]) if leaks else None,
        "contamination.md": _markdown(run, "Contamination", [contam.table or contam.note])
        if contam
        else None,
        "contamination.csv": contam.csv if contam else None,
        "compute.csv": compute.csv,
        "summary.md": _markdown(
            run, "Summary", ["## Findings", findings_intro, findings, "## By method", *summaries]
        ),
        "scores.png": _png(_score_plot(run)),
        "deltas.png": _png(_deltas_plot(run, changes, cfg.margin)),
        "drift.png": _png(_drift_plot(run, forgetting, cfg.margin)),
        "measures.png": _png(_measures_plot(run, drift_levels, measure_panels)),
        "loss.png": _png(_loss_plot(run)),
        "uncertainty.md": _markdown(run, "Refinement uncertainty", unc.parts) if unc else None,
        "uncertainty.csv": unc.csv if unc else None,
        "uncertainty.png": unc.plot if unc else None,
        "selection.md": _markdown(run, "Checkpoint selection", [sel.table]) if sel else None,
        "selection.png": sel.plot if sel else None,
    }
    variants = crossrun.variants_section(run, cfg) if cross_run else None
    files["variants.md"] = _markdown(run, "Across runs", [variants[1]]) if variants else None
    files["variants.csv"] = variants[2] if variants else None
    flip_files = sections.flips(run)
    files.update({f"flips/{task}.csv": text for task, text in flip_files.items()})
    captions = {
        "scores.png": "Each model's score per benchmark with its 95 % interval (mean ± sd across seeds "
        "with several seeds).",
        "deltas.png": f"Each method's change vs base on matched items; dashed: the -{cfg.margin:g}-point "
        "non-inferiority margin (analysis.margin).",
        "measures.png": _measures_caption(measure_panels),
        "loss.png": "Training loss per optimizer step (train/<label>/log.jsonl).",
    }
    # drift.png repeats the general benchmarks' rows of deltas.png: a file for papers, not the page.
    figures: list[Part] = [
        Plot(name, data, captions[name])
        for name, data in files.items()
        if name in captions and isinstance(data, bytes)
    ]
    page = [
        Section("findings", "Findings", [findings_intro, findings]),
        Section("results", "Results", main_parts),
        Section("plots", "Plots", figures),
        Section("summary", "Summary by method", list(summaries)),
        Section("drift", "Format drift", [drift_rows.table]),
        Section("forgetting", "Forgetting", [forget.table]),
        Section(
            "statistics",
            "Statistics",
            stats_parts,
            f"Every comparison of the family ({len(family.rows)})" if family.rows else "",
        ),
        *([variants[0]] if variants else []),
        *([Section("graders", "Math graders", [graders.table])] if graders else []),
        *(
            [
                Section(
                    "uncertainty",
                    "Refinement uncertainty",
                    [
                        *unc.parts,
                        Plot(
                            "uncertainty.png", unc.plot, "Entropy and NLL of ŷ per token (docs/analysis.md)."
                        ),
                    ],
                )
            ]
            if unc
            else []
        ),
        *(
            [
                Section(
                    "selection",
                    "Checkpoint selection",
                    [sel.table, Plot("selection.png", sel.plot, "Validation accuracy per saved step.")],
                )
            ]
            if sel
            else []
        ),
        *([Section("leakage", "Critique leakage", [leaks])] if leaks else []),
        *([Section("contamination", "Contamination", [contam.table or contam.note])] if contam else []),
        Section("compute", "Compute", compute_parts),
        Section(
            "samples",
            "Samples",
            [
                "Every benchmark item with each model's response, verdict and extracted answer. Per-item "
                "verdicts as CSV: " + ", ".join(f"flips/{t}.csv" for t in flip_files) + ".",
                Samples(viewer.sample_data(run)),
            ],
        ),
    ]
    files["report.html"] = render_page(f"Report: {run.run_id}", _meta(run), run.config, page)
    return files


def write_report(
    run_dir: str | Path,
    out_dir: str | Path,
    analysis_config: AnalysisConfig | None = None,
    cross_run: bool = False,
) -> list[Path]:
    """Write the full report for `run_dir` into `out_dir`; returns the files written."""
    out = Path(out_dir)
    written = []
    for name, data in report_files(RunData(run_dir), analysis_config, cross_run).items():
        path = out / name
        if data is None:
            # A file left over from an earlier report of this run would no longer be true.
            path.unlink(missing_ok=True)
        elif isinstance(data, bytes):
            written.append(atomic_write_bytes(path, data))
        else:
            written.append(atomic_write_text(path, data))
    return written


def write_cross_report(run_dirs: list[str | Path], out_dir: str | Path) -> list[Path]:
    """The report of several runs side by side in `out_dir` (report.html, tables, variants.md/csv)."""
    with tempfile.TemporaryDirectory(prefix="harness-cross-") as tmp:
        merged = crossrun.merge(run_dirs, Path(tmp))
        return write_report(merged.root, out_dir, cross_run=True)
