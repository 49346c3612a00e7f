"""`write_report(run_dir, out_dir)`: every report file for one run directory, written atomically.

Tables (md/csv/tex) depend only on the run's files and fixed bootstrap seeds, so regenerating a
report from the same run gives byte-identical tables.
"""

from __future__ import annotations

from pathlib import Path

from harness import drift
from harness.findings import AnalysisConfig, analyse
from harness.io import atomic_write_bytes, atomic_write_text
from harness.report import claims, plots, sections, selection, uncertainty
from harness.report.graders import grader_disagreement
from harness.report.html import render_page
from harness.report.tables import Table, to_csv, to_latex, to_markdown
from harness.rundata import RunData, method_of, metric_label


def _colors(run: RunData) -> dict[str, str]:
    """One colour per model across every plot; a method's seeds share its colour."""
    by_group = {group: f"C{i % 10}" for i, group in enumerate(run.groups)}
    return {**by_group, **{label: by_group.get(method_of(label), "C9") for label in run.train_labels}}


def _score_plot(run: RunData) -> bytes:
    columns = run.columns()
    series = {}
    for group in run.groups:
        bars = []
        for task, metric in columns:
            score = sections.model_score(run, group, task, metric)
            if score is None:
                bars.append(None)
            elif score.spread is not None:
                bars.append(plots.Bar(score.mean, score.spread, score.spread))
            elif score.low is not None and score.high is not None:
                bars.append(plots.Bar(score.mean, score.mean - score.low, score.high - score.mean))
            else:
                bars.append(plots.Bar(score.mean))
        series[group] = bars
    labels = [metric_label(t, m) for t, m in columns]
    return plots.grouped_bars(labels, series, "score (%)", "Scores with 95 % CI", _colors(run))


def _drift_plot(run: RunData, changes: list[drift.Change], margin: float) -> bytes | None:
    if not changes:
        return None
    categories = list(dict.fromkeys(c.label for c in changes))
    series: dict[str, list[plots.Bar | None]] = {}
    for c in changes:
        bars = series.setdefault(c.method, [None] * len(categories))
        result = c.comparison.result
        low, high = (c.delta - result.ci_low, result.ci_high - c.delta) if result else (0.0, 0.0)
        bars[categories.index(c.label)] = plots.Bar(100 * c.delta, 100 * low, 100 * high, c.significant)
    return plots.grouped_bars(
        categories,
        series,
        "delta vs base (points)",
        f"General benchmarks: change vs base (* significant; dashed: -{margin:g} margin)",
        _colors(run),
        zero_line=True,
        margin=margin,
    )


def _loss_plot(run: RunData) -> bytes | None:
    curves = {}
    for label in run.train_labels:
        points = [
            (float(r["step"]), float(r["loss"]))
            for r in run.train_log(label)
            if isinstance(r.get("step"), (int, float)) and isinstance(r.get("loss"), (int, float))
        ]
        if points:
            curves[label] = ([p[0] for p in points], [p[1] for p in points])
    return plots.loss_curves(curves, _colors(run)) if curves else None


def _markdown(run: RunData, title: str, parts: list[Table | str]) -> str:
    body = [
        to_markdown(p) + (f"\n{p.caption}\n" if p.caption else "") if isinstance(p, Table) else p + "\n"
        for p in parts
    ]
    return sections.header_markdown(run, title) + "\n".join(body) + sections.footer_markdown(run)


NO_TRAINING = "No training in this run."
NO_METHODS = "No trained methods to compare against base."


def report_files(
    run: RunData, analysis_config: AnalysisConfig | None = None
) -> dict[str, str | bytes | None]:
    """Relative path -> content of every report file; None marks a file this run has nothing for."""
    cfg = analysis_config or AnalysisConfig.from_config(run.config)
    analysis = analyse(run, cfg)
    changes = analysis.changes
    main = sections.main_table(run, [c for c in changes if c.is_score])
    drift_rows = sections.drift_table(drift.format_drift(run))
    forgetting = drift.forgetting(run, cfg.alpha, changes)
    forget = sections.forgetting_table(forgetting)
    compute = sections.compute_table(run)
    compute_parts: list[Table | str] = [compute.table] if compute.table.rows else [NO_TRAINING]
    summaries = list(drift.paragraphs(run, cfg.alpha, changes).values()) or [NO_METHODS]
    findings_intro, findings = claims.intro(analysis), claims.findings_table(analysis.findings)
    family, family_rows = claims.family_table(analysis)
    seeds = sections.seed_table(run)
    graders = grader_disagreement(run)
    main_parts: list[Table | str] = [main.table] + ([seeds.table] if seeds else [])
    unc, sel = uncertainty.section(run, _colors(run)), selection.section(run, _colors(run))
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
        "compute.csv": compute.csv,
        "summary.md": _markdown(
            run, "Summary", ["## Findings", findings_intro, findings, "## By method", *summaries]
        ),
        "scores.png": _score_plot(run),
        "drift.png": _drift_plot(run, forgetting, cfg.margin),
        "loss.png": _loss_plot(run),
        "uncertainty.md": _markdown(run, "Refinement uncertainty", unc.parts) if unc else None,
        "uncertainty.csv": unc.csv if unc else None,
        "uncertainty.png": unc.plot if unc else None,
        "selection.md": _markdown(run, "Checkpoint selection", [sel.table]) if sel else None,
        "selection.png": sel.plot if sel else None,
    }
    flip_files = sections.flips(run)
    files.update({f"flips/{task}.csv": text for task, text in flip_files.items()})
    images = [
        (name, data) for name, data in files.items() if name.endswith(".png") and isinstance(data, bytes)
    ]
    files["report.html"] = render_page(
        f"Report: {run.run_id}",
        run.run_id,
        run.git_revision,
        run.config,
        [
            ("Findings", [findings_intro, findings]),
            ("Results", main_parts),
            ("Plots", images),
            ("Summary", summaries),
            ("Format drift", [drift_rows.table]),
            ("Forgetting", [forget.table]),
            ("Statistics", stats_parts),
            *([("Math graders", [graders.table])] if graders else []),
            *([("Refinement uncertainty", unc.parts)] if unc else []),
            *([("Checkpoint selection", [sel.table])] if sel else []),
            ("Compute", compute_parts),
            ("Per-item verdicts", [f"Which items flipped: flips/{t}.csv" for t in flip_files]),
        ],
    )
    return files


def write_report(
    run_dir: str | Path, out_dir: str | Path, analysis_config: AnalysisConfig | None = None
) -> list[Path]:
    """Write the full report for `run_dir` into `out_dir`; returns the files written."""
    out = Path(out_dir)
    written = []
    for name, data in report_files(RunData(run_dir), analysis_config).items():
        path = out / name
        if data is None:
            # A file left over from an earlier report of this run would no longer be true.
            path.unlink(missing_ok=True)
        elif isinstance(data, bytes):
            written.append(atomic_write_bytes(path, data))
        else:
            written.append(atomic_write_text(path, data))
    return written
