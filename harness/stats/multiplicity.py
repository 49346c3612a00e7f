"""Adjusting the p-values of a family of comparisons (statsmodels' `multipletests`)."""

from __future__ import annotations

from collections.abc import Sequence

from statsmodels.stats.multitest import multipletests

from harness.errors import HarnessError

# Our names -> statsmodels'. Holm controls the family-wise error rate under any dependence;
# Benjamini-Hochberg controls the false discovery rate (valid under positive dependence).
METHODS = {"holm": "holm", "bh": "fdr_bh", "none": None}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise HarnessError(f"unknown multiplicity method {method!r}: choose one of {', '.join(METHODS)}")
    return method


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values in the input order; `none` returns them unchanged."""
    name = METHODS[check_method(method)]
    if not p_values or name is None:
        return [float(p) for p in p_values]
    return [float(p) for p in multipletests(list(p_values), method=name)[1]]
