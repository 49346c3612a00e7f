"""What a run found: the family of comparisons, their adjusted p-values, verdicts and power, and a
study's claims read as hypotheses against them. The hypotheses themselves belong to the study that
makes them (the CGD paper's: cgd/hypotheses.py); this module only tests what it is given.

The verdict rule (docs/statistics.md), for a difference `delta` with a 95 % interval [low, high],
a Holm- (or BH-) adjusted p and a margin M in points:
    better / worse        adjusted p < alpha (sign of delta); for quantities where "up" is not
                          better (length; added drift measures unless they say otherwise): higher / lower
    too few items         otherwise, where the interval method's coverage is not near nominal at
                          this many independent units (harness/stats/coverage.py)
    equivalent            otherwise, and -M < low and high < M
    non-inferior          otherwise, and low > -M
    inconclusive          otherwise, and the interval spans both -M and 0
    no difference shown   what is left: a nominal difference that the family-wise adjustment
                          did not confirm, or a quantity without a margin (lengths)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness import drift
from harness.config import setting
from harness.defaults import ALPHA, MULTIPLICITY
from harness.drift import Change
from harness.errors import HarnessError
from harness.rundata import BASE, RunData
from harness.stats import DEFAULT_POWER, adjust, check_method, mde, mde_spread, min_units, trusted
from harness.stats.multiplicity import METHODS


@dataclass(frozen=True)
class AnalysisConfig:
    """The `analysis:` section: how comparisons become verdicts (docs/statistics.md)."""

    alpha: float = setting(ALPHA, "significance level of every paired test, applied to adjusted p-values")
    margin: float = setting(
        2.0, "points: non-inferiority / equivalence margin, the smallest change that matters", minimum=0.0
    )
    multiplicity: str = setting(
        MULTIPLICITY,
        "holm | bh | none: adjustment over the family of comparisons a report makes",
        choices=tuple(METHODS),
    )
    power: float = setting(DEFAULT_POWER, "power at which the minimum detectable effect (MDE) is computed")
    uncertainty: bool = setting(
        True,
        "refinement uncertainty (docs/analysis.md): annotate the validation problems and score every "
        "model on them; needs data.n_val > 0 and a method that uses the teacher",
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise HarnessError(f"analysis.alpha must be between 0 and 1, got {self.alpha:g}")
        if self.margin < 0:
            raise HarnessError(f"analysis.margin must be >= 0 points, got {self.margin:g}")
        if not 0.0 < self.power < 1.0:
            raise HarnessError(f"analysis.power must be between 0 and 1, got {self.power:g}")
        check_method(self.multiplicity)

    @classmethod
    def from_config(cls, config: dict | None) -> AnalysisConfig:
        """From a resolved config's `analysis` section (defaults for keys it lacks)."""
        section = dict((config or {}).get("analysis") or {})
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})


def verdict(change: Change, cfg: AnalysisConfig) -> str:
    result = change.comparison.result
    if result is None:
        return "not tested"
    if change.significant:
        if not drift.rise_is_better(change.quantity):  # a rise is no improvement: say which way
            return "higher" if change.delta > 0 else "lower"
        return "better" if change.delta > 0 else "worse"
    if not change.in_points:
        return "no difference shown"
    if not is_trusted(change):
        return "too few items"
    margin = cfg.margin / 100.0
    if -margin < result.ci_low and result.ci_high < margin:
        return "equivalent"
    if result.ci_low > -margin:
        return "non-inferior"
    if result.ci_low <= -margin and result.ci_high >= 0.0:
        return "inconclusive"
    return "no difference shown"


def is_trusted(change: Change) -> bool:
    """Whether the comparison's interval has near-nominal coverage at its number of units."""
    result = change.comparison.result
    return result is not None and trusted(result.ci_method, result.units)


def _mde(change: Change, cfg: AnalysisConfig) -> float | None:
    result = change.comparison.result
    if result is None or not change.in_points:
        return None
    if result.test == "mcnemar":
        return mde(result.n, result.discordance, cfg.alpha, cfg.power, binary=True)
    return mde_spread(result.units, result.stderr, cfg.alpha, cfg.power)


def settle(changes: list[Change], cfg: AnalysisConfig) -> list[Change]:
    """Adjust the family's p-values together, then give each comparison its MDE and verdict."""
    tested = [c for c in changes if c.p_value is not None]
    adjusted = dict(zip(map(id, tested), adjust([c.p_value for c in tested], cfg.multiplicity)))
    out = []
    for c in changes:
        c = dataclasses.replace(c, alpha=cfg.alpha, p_adjusted=adjusted.get(id(c)), mde=_mde(c, cfg))
        out.append(dataclasses.replace(c, verdict=verdict(c, cfg)))
    return out


# --- a study's claims, as hypotheses ----------------------------------------------------------


@dataclass(frozen=True)
class Test:
    quantity: str  # "score" (the task's headline) or a drift measure
    expect: str  # "higher" | "lower" | "non-inferior"


@dataclass(frozen=True)
class Hypothesis:
    key: str
    claim: str
    method: str  # the group whose claim it is, tested against `reference`
    reference: str
    tasks: Callable[[RunData | RunShape], list[str]]  # the benchmarks it covers on a run (or planned run)
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class RunShape:
    """What fixes a report's family of comparisons before any score exists: the benchmarks, their
    table columns, which ones generate text, and the model groups. `of` reads it off a run,
    `planned` off a config; `family_keys` turns either into the family, so the planner's family
    size is the report's by construction (tests/unit/test_plan.py checks it against a real analysis)."""

    tasks: list[str]
    groups: dict[str, list[str]]
    columns: list[tuple[str, str]]
    generative: list[str]
    headlines: dict[str, str]

    def headline(self, task: str) -> str:
        return self.headlines[task]

    @classmethod
    def of(cls, run: RunData) -> RunShape:
        return cls(
            list(run.tasks),
            dict(run.groups),
            run.columns(),
            [t for t in run.tasks if drift.is_generative(run, t)],
            {t: run.headline(t) for t in run.tasks},
        )


def family_keys(shape: RunShape, hypotheses: Sequence[Hypothesis]) -> set[tuple[str, str, str, str]]:
    """(method, reference, task, quantity) of every comparison `analyse` makes on a run of this
    shape: each method against base on every column and applicable drift measure, plus the
    comparisons between groups that the hypotheses add."""
    methods = [g for g in shape.groups if g != BASE] if BASE in shape.groups else []
    keys = {(m, BASE, task, metric) for m in methods for task, metric in shape.columns}
    keys |= {
        (m, BASE, task, measure)
        for m in methods
        for task in shape.generative
        for measure in drift.applicable_measures(task)
    }
    for h in hypotheses:
        if not {h.method, h.reference} <= set(shape.groups):
            continue
        for task in h.tasks(shape):
            for test in h.tests:
                quantity = shape.headline(task) if test.quantity == "score" else test.quantity
                keys.add((h.method, h.reference, task, quantity))
    return keys


@dataclass(frozen=True)
class Finding:
    hypothesis: Hypothesis
    verdict: str  # supported | contradicted | mixed | inconclusive | not tested
    evidence: list[tuple[Test, Change]]
    why: str


def _comparison(
    run: RunData, h: Hypothesis, task: str, test: Test, known: dict[tuple, Change]
) -> Change | None:
    """The comparison a hypothesis needs: one already made against base, or a new one between methods."""
    quantity = run.headline(task) if test.quantity == "score" else test.quantity
    if (h.method, h.reference, task, quantity) in known:
        return known[h.method, h.reference, task, quantity]
    if test.quantity == "score":
        return drift.score_change(run, h.method, h.reference, task, quantity)
    return drift.measure_change(run, h.method, h.reference, task, quantity)


def hypothesis_changes(
    run: RunData, vs_base: list[Change], hypotheses: Sequence[Hypothesis]
) -> dict[str, list[tuple[Test, Change]]]:
    """Each hypothesis's comparisons on this run (unsettled: no adjusted p yet)."""
    known = {(c.method, c.reference, c.task, c.quantity): c for c in vs_base}
    out = {}
    for h in hypotheses:
        if not {h.method, h.reference} <= set(run.groups):
            out[h.key] = []
            continue
        out[h.key] = [
            (test, c)
            for task in h.tasks(run)
            for test in h.tests
            if (c := _comparison(run, h, task, test, known))
        ]
    return out


def _too_few(changes: list[Change]) -> str:
    parts = []
    for c in changes:
        result = c.comparison.result
        need = min_units(result.ci_method)
        unit = "prompts" if result.clusters is not None else "items"
        parts.append(
            f"{c.task} (n = {result.units} {unit}; its interval needs "
            + (f"{need}" if need else "more than one")
            + ")"
        )
    return "too few items: " + ", ".join(parts)


def _pts(value: float) -> str:
    return f"{100 * value:+.1f}"


def _non_inferior(evidence: list[tuple[Test, Change]], cfg: AnalysisConfig) -> tuple[str, str]:
    """Non-inferiority is read off the interval (CONSORT): its lower bound above -M. A significant
    drop whose whole interval lies above -M is a real but smaller-than-margin change: it keeps the
    claim and is named in the reason (docs/statistics.md)."""
    margin = cfg.margin / 100.0
    usable = [c for _, c in evidence if is_trusted(c)]
    below = [c for c in usable if c.comparison.result.ci_high < -margin]
    if below:
        return "contradicted", "; ".join(
            f"{c.task}'s interval lies wholly below -{cfg.margin:g} points "
            f"([{_pts(c.comparison.result.ci_low)}, {_pts(c.comparison.result.ci_high)}])"
            for c in below
        )
    untrusted = [c for _, c in evidence if not is_trusted(c)]
    if untrusted:
        return "inconclusive", _too_few(untrusted)
    reaching = [c for c in usable if c.comparison.result.ci_low <= -margin]
    if reaching:
        return "inconclusive", "; ".join(
            f"{c.task}'s interval reaches below -{cfg.margin:g} points "
            f"([{_pts(c.comparison.result.ci_low)}, {_pts(c.comparison.result.ci_high)}])"
            for c in reaching
        )
    why = f"every interval's lower bound is above -{cfg.margin:g} points"
    drops = [c for c in usable if c.significant and c.delta < 0]
    if drops:
        why += "; significant drops within the margin: " + ", ".join(
            f"{c.task} {_pts(c.delta)} [{_pts(c.comparison.result.ci_low)}, "
            f"{_pts(c.comparison.result.ci_high)}]"
            for c in drops
        )
    return "supported", why


def _judge(
    h: Hypothesis, evidence: list[tuple[Test, Change]], cfg: AnalysisConfig, why_untested: str = ""
) -> tuple[str, str]:
    """A hypothesis's verdict from its comparisons; only those whose interval is trusted at their n
    (harness/stats/coverage.py) can support or contradict it."""
    margin = cfg.margin / 100.0
    if not evidence:
        return "not tested", why_untested
    if all(t.expect == "non-inferior" for t, _ in evidence):
        return _non_inferior(evidence, cfg)
    usable = [(t, c) for t, c in evidence if is_trusted(c)]
    if not usable:
        return "inconclusive", _too_few([c for _, c in evidence])
    sign = {"higher": 1.0, "lower": -1.0}
    agree = [c for t, c in usable if c.significant and c.delta * sign[t.expect] > 0]
    oppose = [c for t, c in usable if c.significant and c.delta * sign[t.expect] < 0]
    if agree and oppose:
        return "mixed", "significant changes in both directions"
    if agree:
        return (
            "supported",
            f"{len(agree)} of {len(evidence)} comparisons significant in the claimed direction",
        )
    if oppose:
        return "contradicted", f"{len(oppose)} of {len(evidence)} comparisons significant against the claim"
    ruled_out = len(usable) == len(evidence) and all(
        (c.comparison.result.ci_high if t.expect == "higher" else -c.comparison.result.ci_low) < margin
        for t, c in usable
    )
    if ruled_out:
        return (
            "contradicted",
            f"every interval rules out a change of {cfg.margin:g} points in the claimed direction",
        )
    if len(usable) < len(evidence):
        return "inconclusive", _too_few([c for _, c in evidence if not is_trusted(c)])
    return "inconclusive", "nothing significant after adjustment, and the intervals allow the claimed change"


def _why_untested(run: RunData, h: Hypothesis) -> str:
    missing = [m for m in (h.reference, h.method) if m not in run.groups]
    if missing:
        # A group the run's config asks for but whose evaluation has not completed (a report written
        # mid-run, or after a stop) is unfinished, not absent.
        return " and ".join(
            f"{m} {'not finished' if m in run.planned_groups else 'did not run'}" for m in missing
        )
    return "none of its benchmarks was evaluated in this run"


def findings(
    run: RunData,
    per_hypothesis: dict[str, list[tuple[Test, Change]]],
    settled: dict[str, Change],
    cfg: AnalysisConfig,
    hypotheses: Sequence[Hypothesis],
) -> list[Finding]:
    """Verdicts per hypothesis from its comparisons, each replaced by its settled (adjusted) version."""
    out = []
    for h in hypotheses:
        evidence = [(t, settled.get(c.key, c)) for t, c in per_hypothesis.get(h.key, [])]
        word, why = _judge(h, evidence, cfg, _why_untested(run, h))
        out.append(Finding(h, word, evidence, why))
    return out


@dataclass(frozen=True)
class Analysis:
    config: AnalysisConfig
    changes: list[Change]  # every method vs base: scores and drift measures (settled)
    family: list[Change]  # every comparison that was adjusted together
    findings: list[Finding]


def analyse(run: RunData, cfg: AnalysisConfig, hypotheses: Sequence[Hypothesis]) -> Analysis:
    """Every comparison the report makes, adjusted as one family, and the hypotheses' verdicts."""
    vs_base = drift.changes_vs_base(run, cfg.alpha)
    per_hypothesis = hypothesis_changes(run, vs_base, hypotheses)
    by_key = {c.key: c for c in vs_base}
    for pairs in per_hypothesis.values():
        for _, c in pairs:
            by_key.setdefault(c.key, c)
    family = settle(list(by_key.values()), cfg)
    settled = {c.key: c for c in family}
    return Analysis(
        cfg,
        [settled[c.key] for c in vs_base],
        [c for c in family if c.p_value is not None],
        findings(run, per_hypothesis, settled, cfg, hypotheses),
    )
