"""Defaults shared across layers, in a module that imports nothing: the command line's help reads
them, and `harness --help` must not load scipy to print a number."""

DEFAULT_MODEL = "smollm2-135m"  # the embedded student every command uses unless told otherwise
ALPHA = 0.05  # significance level of every paired test (analysis, drift, gate)
MULTIPLICITY = "holm"  # adjustment over a family of comparisons
GATE_MAX_DROP = 2.0  # points a gated score may drop before the drop can fail the gate
