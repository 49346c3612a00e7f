"""The study's dataframes: `comparisons_df(runs)` and `findings_df(runs)` (docs/analysis-api.md).

They hold the findings, which test the CGD paper's hypotheses (cgd/hypotheses.py), so they live above
the evaluation library; `harness.items_df` / `summary_df` (harness/frames.py) need no study and stay
there. Exported as `harness_app.comparisons_df` / `harness_app.findings_df`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.frames import open_runs, typed_frame

if TYPE_CHECKING:
    import pandas as pd

    from harness.rundata import RunData

# One row per comparison the report makes (harness.findings.analyse), on the scale of the quantity:
# fractions for scores and shares, tokens or characters for lengths.
COMPARISON_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "method": "string",
    "reference": "string",
    "benchmark": "string",
    "quantity": "string",  # a metric name or a drift measure (parseable, critique, length, ...)
    "reference_value": "Float64",
    "value": "Float64",
    "delta": "Float64",
    "ci_low": "Float64",
    "ci_high": "Float64",
    "p": "Float64",
    "p_adjusted": "Float64",
    "mde": "Float64",
    "verdict": "string",
    "n": "Int64",  # matched items
    "test": "string",  # mcnemar | sign-flip | <NA> when nothing matched
    "seeds": "Int64",
}

FINDING_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "hypothesis": "string",
    "claim": "string",
    "method": "string",
    "reference": "string",
    "verdict": "string",
    "why": "string",
    "comparisons": "Int64",
}


# ------------------------------------------------------------------------------ comparisons ----


def _analysis(run: RunData):
    from cgd.hypotheses import HYPOTHESES
    from harness.findings import AnalysisConfig, analyse

    return analyse(run, AnalysisConfig.from_config(run.config), HYPOTHESES)


def _comparison_row(run_id: str, change) -> dict[str, Any]:
    result = change.comparison.result
    return {
        "run_id": run_id,
        "method": change.method,
        "reference": change.reference,
        "benchmark": change.task,
        "quantity": change.quantity,
        "reference_value": change.base,
        "value": change.value,
        "delta": change.delta,
        "ci_low": result.ci_low if result else None,
        "ci_high": result.ci_high if result else None,
        "p": change.p_value,
        "p_adjusted": change.p_adjusted,
        "mde": change.mde,
        "verdict": change.verdict,
        "n": result.n if result else change.comparison.matched,
        "test": result.test if result else None,
        "seeds": change.seeds,
    }


def comparisons_df(runs: Any) -> pd.DataFrame:
    """Every comparison of the findings (each method vs base on every score and drift measure, and the
    hypotheses' method-vs-method ones), with the p-values adjusted over the run's family, each
    comparison's minimum detectable effect and verdict (docs/statistics.md)."""
    rows = []
    for _, run in open_runs(runs):
        if run is None:
            continue
        analysis = _analysis(run)
        changes = {c.key: c for c in analysis.changes}
        for c in analysis.family:
            changes.setdefault(c.key, c)
        rows.extend(_comparison_row(run.run_id, c) for c in changes.values())
    return typed_frame(rows, COMPARISON_COLUMNS)


def findings_df(runs: Any) -> pd.DataFrame:
    """The CGD paper's hypotheses (H1-H6, cgd/hypotheses.py) per run: verdict, why, and how many comparisons decided it."""
    rows = []
    for _, run in open_runs(runs):
        if run is None:
            continue
        for f in _analysis(run).findings:
            rows.append(
                {
                    "run_id": run.run_id,
                    "hypothesis": f.hypothesis.key,
                    "claim": f.hypothesis.claim,
                    "method": f.hypothesis.method,
                    "reference": f.hypothesis.reference,
                    "verdict": f.verdict,
                    "why": f.why,
                    "comparisons": len(f.evidence),
                }
            )
    return typed_frame(rows, FINDING_COLUMNS)
