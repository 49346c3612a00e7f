"""Report generation: tables (md/csv/tex/html), plots, the sample viewer and per-item comparisons.

`build.write_report` writes a run's report; the gate uses only `tables` (no matplotlib at start-up).
"""
