"""Report generation: tables (md/csv/tex/html), plots and per-item comparisons for a run directory.

`write_report` is imported lazily so that modules needing only the table model
(`harness.report.tables`, used by the gate) do not pull in matplotlib at start-up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from harness.report.build import write_report

        return write_report
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
