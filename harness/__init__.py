"""cgd-harness: benchmark harness for SFT / CFT / Critique-Guided Distillation.

Run directories as pandas dataframes (docs/analysis-api.md): `harness.items_df(runs)`,
`harness.summary_df(runs)`; the study's comparisons and findings: `harness_app.comparisons_df(runs)`,
`harness_app.findings_df(runs)`.
pandas and the statistics load on the first call, not on `import harness`.
"""

from harness.frames import items_df, summary_df

__version__ = "0.1.0"
__all__ = ["items_df", "summary_df"]
