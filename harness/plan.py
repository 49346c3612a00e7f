"""`harness plan`: what a profile's comparisons could detect, before any compute is spent.

For every benchmark the profile evaluates: its n, the minimum detectable effect (MDE, 80 % power,
exact McNemar for 0/1 benchmarks, normal approximation for TruthfulQA-MC2's continuous scores) at a
few discordance rates (the share of items on which two models disagree, unknown before a run), the
MDE at the Holm worst case (alpha divided by the planned family size), and the n needed for a
target effect. A profile whose MDEs are tens of points can only ever report "inconclusive".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness import registry
from harness.errors import HarnessError
from harness.findings import AnalysisConfig, Hypothesis, RunShape, family_keys
from harness.rundata import BASE, EXTRA_METRICS, HEADLINE_METRIC
from harness.stats import mde, n_for_effect

DISCORDANCES = (0.05, 0.1, 0.2, 0.4)
N_FOR_EFFECT_AT = (0.1, 0.2, 0.4)


@dataclass(frozen=True)
class PlanRow:
    task: str
    n: int
    mde_best: float | None  # discordance = the effect itself: the best any data could do
    mde_at: tuple[float | None, ...]  # at DISCORDANCES
    mde_holm: float | None  # at 20 % discordance and alpha / family size
    n_needed: tuple[int | None, ...]  # for the target effect at N_FOR_EFFECT_AT


def planned_benchmarks(config: dict) -> list[str]:
    spec = config["eval"]["benchmarks"]
    return registry.resolve_benchmarks(spec if isinstance(spec, str) else ",".join(spec))


def planned_shape(config: dict) -> RunShape:
    """The shape of the run a compare of this config produces, read off the config and the registry."""
    tasks = planned_benchmarks(config)
    groups = {BASE: [BASE], **{m: [m] for m in config.get("methods") or []}}
    columns = [(t, m) for t in tasks for m in (HEADLINE_METRIC[t], *EXTRA_METRICS.get(t, ()))]
    generative = [t for t in tasks if registry.get(t).output_type == "generate_until"]
    return RunShape(tasks, groups, columns, generative, {t: HEADLINE_METRIC[t] for t in tasks})


def family_size(config: dict, hypotheses: Sequence[Hypothesis]) -> int:
    """Comparisons a compare run of this config will adjust together: the report's own family rule
    (harness.findings.family_keys, with the study's hypotheses) applied to the planned run."""
    return max(1, len(family_keys(planned_shape(config), hypotheses)))


def plan(
    config: dict, hypotheses: Sequence[Hypothesis], effect_points: float
) -> tuple[list[PlanRow], int, AnalysisConfig]:
    if not 0.0 < effect_points <= 100.0:
        raise HarnessError(f"--effect must be in (0, 100] points, got {effect_points:g}")
    cfg = AnalysisConfig.from_config(config)
    ev = config["eval"]
    m = family_size(config, hypotheses)
    effect = effect_points / 100.0
    rows = []
    for task in planned_benchmarks(config):
        n = registry.get(task).n_items(
            ev.get("limit"), truthfulqa_version=str(ev.get("truthfulqa_version", "2021"))
        )
        binary = registry.get(task).binary
        rows.append(
            PlanRow(
                task,
                n,
                mde(n, None, cfg.alpha, cfg.power, binary),
                tuple(mde(n, d, cfg.alpha, cfg.power, binary) for d in DISCORDANCES),
                mde(n, 0.2, cfg.alpha / m, cfg.power, binary),
                tuple(n_for_effect(effect, d, cfg.alpha, cfg.power) for d in N_FOR_EFFECT_AT),
            )
        )
    return rows, m, cfg


def _pts(value: float | None) -> str:
    return "none" if value is None else f"{100 * value:.1f}"


def render(rows: list[PlanRow], family: int, cfg: AnalysisConfig, effect_points: float) -> str:
    """The plan as a Markdown table with the assumptions above it."""
    head = [
        "benchmark",
        "n",
        "MDE best case",
        *(f"MDE @{100 * d:.0f}%" for d in DISCORDANCES),
        f"MDE @20% Holm (alpha/{family})",
        *(f"n for {effect_points:g} pts @{100 * d:.0f}%" for d in N_FOR_EFFECT_AT),
    ]
    lines = [
        f"Minimum detectable effects in points ({100 * cfg.power:.0f} % power, alpha = {cfg.alpha:g}, two-sided; "
        f"@x% = share of items on which the two models disagree; 'none' = no effect of any size is detectable "
        f"at this n). A compare run of this profile adjusts about {family} comparisons together "
        f"({cfg.multiplicity}); the Holm column is the MDE of its most demanding step.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        needed = ["-" if n is None else f"{n:,}" for n in r.n_needed]
        lines.append(
            "| "
            + " | ".join(
                [r.task, str(r.n), _pts(r.mde_best), *map(_pts, r.mde_at), _pts(r.mde_holm), *needed]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plan_text(config: dict, hypotheses: Sequence[Hypothesis], effect_points: float = 5.0) -> str:
    rows, family, cfg = plan(config, hypotheses, effect_points)
    return render(rows, family, cfg, effect_points)
