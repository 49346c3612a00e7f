"""The findings block every report opens with: the paper's claims, each with its verdict and numbers."""

from __future__ import annotations

from harness.drift import Change, format_p
from harness.findings import Analysis, Finding
from harness_app.report.tables import Table

_ADJUSTMENT = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}


def mde_text(change: Change) -> str:
    result = change.comparison.result
    if result is None or not change.in_points:
        return "-"
    if change.mde is None:
        return f"none at n = {result.n}"
    return f"{100 * change.mde:.1f}"


def interval_text(change: Change) -> str:
    result = change.comparison.result
    if result is None:
        return "-"
    scale = 100.0 if change.in_points else 1.0
    return f"[{scale * result.ci_low:+.1f}, {scale * result.ci_high:+.1f}]"


def evidence_text(change: Change) -> str:
    """One comparison in a line: what, delta with interval, raw and adjusted p, MDE, n, verdict."""
    result = change.comparison.result
    unit = "pts" if change.in_points else change.unit
    scale = 100.0 if change.in_points else 1.0
    adjusted = "" if change.p_adjusted is None else f", adj. {format_p(change.p_adjusted)}"
    return (
        f"{change.label}: {scale * change.delta:+.1f} {unit} {interval_text(change)}, "
        f"{format_p(change.p_value)}{adjusted}, MDE {mde_text(change)}, n = {result.n if result else 0}"
        f" → {change.verdict}"
    )


def intro(analysis: Analysis) -> str:
    cfg = analysis.config
    method = _ADJUSTMENT[cfg.multiplicity]  # validated by AnalysisConfig
    return (
        f"The CGD paper's claims, tested on this run as hypotheses. Every p-value is adjusted "
        f"({method}) over the family of {len(analysis.family)} comparisons this report makes "
        f"(listed under Statistics); alpha = {cfg.alpha:g}; margin ±{cfg.margin:g} points for "
        f"non-inferiority and equivalence; MDE = the smallest change the comparison could have "
        f"detected with {100 * cfg.power:.0f} % power at its n and observed discordance. "
        f"Verdict rules: docs/statistics.md."
    )


def findings_table(findings: list[Finding]) -> Table:
    rows = []
    for f in findings:
        evidence = "; ".join(evidence_text(c) for _, c in f.evidence) if f.evidence else f.why
        why = f" ({f.why})" if f.evidence else ""
        rows.append([f.hypothesis.key, f.hypothesis.claim, f.verdict, evidence + why])
    return Table(
        ["", "claim", "verdict", "evidence"],
        rows,
        {(r, 2) for r, f in enumerate(findings) if f.verdict in ("supported", "contradicted")},
    )


def family_table(analysis: Analysis) -> tuple[Table, list[list[object]]]:
    """Every comparison in the family: raw and adjusted p side by side, MDE and verdict."""
    rows, csv_rows = [], []
    for c in analysis.family:
        result = c.comparison.result
        scale = 100.0 if c.in_points else 1.0
        rows.append(
            [
                c.method,
                c.reference,
                c.label,
                str(result.n),
                f"{scale * c.base:.1f}",
                f"{scale * c.value:.1f}",
                f"{scale * c.delta:+.1f}",
                interval_text(c),
                result.test,
                format_p(c.p_value),
                format_p(c.p_adjusted),
                mde_text(c),
                c.verdict,
            ]
        )
        csv_rows.append(
            [
                c.method,
                c.reference,
                c.task,
                c.quantity,
                result.n,
                c.seeds,
                round(scale * c.base, 4),
                round(scale * c.value, 4),
                round(scale * c.delta, 4),
                round(scale * result.ci_low, 4),
                round(scale * result.ci_high, 4),
                result.test,
                result.ci_method,
                f"{c.p_value:.6g}",
                f"{c.p_adjusted:.6g}" if c.p_adjusted is not None else "",
                "" if c.mde is None else round(100 * c.mde, 4),
                c.verdict,
            ]
        )
    columns = [
        "variant",
        "reference",
        "quantity",
        "n",
        "reference value",
        "value",
        "delta",
        "95% CI",
        "test",
        "p",
        "adjusted p",
        "MDE",
        "verdict",
    ]
    return Table(
        columns, rows, caption="The family of comparisons (points; lengths in their unit)."
    ), csv_rows


FAMILY_CSV_COLUMNS = [
    "variant",
    "reference",
    "task",
    "quantity",
    "n",
    "seeds",
    "reference_value",
    "value",
    "delta",
    "ci_low",
    "ci_high",
    "test",
    "ci_method",
    "p_value",
    "p_adjusted",
    "mde_points",
    "verdict",
]
