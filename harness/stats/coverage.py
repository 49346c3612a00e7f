"""Where an interval can be trusted: the fewest independent units at which each interval method's
coverage is near its nominal level.

An equivalence, non-inferiority, supported or contradicted verdict is a claim of precision; it is
only as good as the interval behind it. tests/unit/test_stats_coverage.py simulates each method's
coverage at 95 % on the kinds of data a report compares (paired verdicts, continuous scores,
instructions clustered in prompts, several seeds) and checks that it stays at or above
NEAR_NOMINAL from these sizes on; below them the verdict is "too few items". docs/statistics.md
gives the simulated table.
"""

from __future__ import annotations

NEAR_NOMINAL = 0.93  # simulated coverage of a nominal 95 % interval that still counts as honest

# Independent units (items, or clusters where items are clustered) an interval method needs.
MIN_UNITS = {
    "newcombe": 10,  # method 10 with its widenings: conservative even below, but 2/2^n > alpha there
    "t": 10,
    "wilson": 10,  # the no-spread bound: as conservative as its data allow
    "cluster-t": 50,  # ratio estimator, cluster-robust variance: undercovers with few clusters
    "hierarchical-bootstrap": 30,  # percentile bootstrap: undercovers at small n
}


def min_units(ci_method: str) -> int | None:
    """None for a method that is never trusted ("range": one unit, only the scale's range)."""
    return MIN_UNITS.get(ci_method)


def trusted(ci_method: str, units: int) -> bool:
    need = min_units(ci_method)
    return need is not None and units >= need
