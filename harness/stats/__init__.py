"""Statistics for comparing models on per-item scores: intervals, paired tests, power, multiplicity.

Every random draw comes from a generator seeded by the caller (default 0), so the same scores
always give the same intervals and p-values and report tables stay byte-identical across
re-runs. The methods and why each was chosen: docs/statistics.md.
"""

from harness.stats.coverage import MIN_UNITS, NEAR_NOMINAL, min_units, trusted
from harness.stats.intervals import (
    DEFAULT_CONFIDENCE,
    Interval,
    aggregate_interval,
    clopper_pearson,
    display_digits,
    interval_text,
    is_binary,
    score_interval,
    t_interval,
    wilson,
)
from harness.stats.multiplicity import METHODS as MULTIPLICITY_METHODS
from harness.stats.multiplicity import adjust, check_method
from harness.stats.paired import (
    Alignment,
    ItemComparison,
    McNemar,
    PairedTest,
    align,
    compare_items,
    mcnemar,
    mcnemar_p,
    newcombe_paired,
    paired_test,
    sign_flip_p,
)
from harness.stats.power import DEFAULT_POWER, mcnemar_power, mde, mde_spread, n_for_effect, normal_power
from harness.stats.seeds import SeedComparison, hierarchical_bootstrap, seed_variance_share

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_POWER",
    "MIN_UNITS",
    "MULTIPLICITY_METHODS",
    "NEAR_NOMINAL",
    "Alignment",
    "Interval",
    "ItemComparison",
    "McNemar",
    "PairedTest",
    "SeedComparison",
    "adjust",
    "aggregate_interval",
    "align",
    "check_method",
    "clopper_pearson",
    "compare_items",
    "display_digits",
    "hierarchical_bootstrap",
    "interval_text",
    "is_binary",
    "mcnemar",
    "mcnemar_p",
    "mcnemar_power",
    "mde",
    "mde_spread",
    "min_units",
    "n_for_effect",
    "newcombe_paired",
    "normal_power",
    "paired_test",
    "score_interval",
    "seed_variance_share",
    "sign_flip_p",
    "t_interval",
    "trusted",
    "wilson",
]
