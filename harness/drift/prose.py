"""The drift section's prose: one paragraph per method on what moved, what did not, and what could have."""

from __future__ import annotations

from harness.drift.changes import DEFAULT_ALPHA, Change, _methods, changes_vs_base
from harness.rundata import RunData, is_general


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _p_text(change: Change) -> str:
    if change.p_adjusted is None:
        return format_p(change.p_value)
    return f"{format_p(change.p_value)}, adjusted {format_p(change.p_adjusted).removeprefix('p ')}"


_TEST_NAMES = {
    "mcnemar": "McNemar",
    "sign-flip": "sign-flip test",
    "hierarchical-bootstrap": "hierarchical bootstrap",
}


def describe_change(change: Change) -> str:
    scale = 100.0 if change.in_points else 1.0
    size_unit = "points" if change.in_points else change.unit
    direction = "up" if change.delta > 0 else "down"
    result = change.comparison.result
    test = _TEST_NAMES.get(result.test, result.test) if result else "no test"
    return (
        f"{change.label} {direction} {abs(change.delta) * scale:.1f} {size_unit} "
        f"({change.base * scale:.1f} -> {change.value * scale:.1f}, {_p_text(change)}, "
        f"{test}, {change.comparison.matched} matched items)"
    )


def _detectable(changes: list[Change]) -> str:
    """What the comparisons that found nothing could have found: their smallest MDE."""
    scored = [c for c in changes if c.is_score and c.comparison.result is not None]
    if not scored:
        return ""
    n = max(c.comparison.result.n for c in scored)
    found = [c.mde for c in scored if c.mde is not None]
    if not found:
        return f" At n = {n} items no change of any size could have been detected at 80 % power."
    return (
        f" The smallest change these comparisons could have detected at 80 % power was "
        f"{100 * min(found):.1f} points (n = {n})."
    )


def paragraph(method: str, changes: list[Change], alpha: float) -> str:
    """A few sentences on what moved significantly for one method, what did not, and what could have."""
    moved = [c for c in changes if c.significant]
    still = [c for c in changes if not c.significant and c.is_score]
    parts = [
        f"{method} vs base (paired tests on matched items; p adjusted over the report's family, "
        f"alpha = {alpha:g})."
    ]
    if moved:
        parts.append("Moved significantly: " + "; ".join(describe_change(c) for c in moved) + ".")
    else:
        parts.append("Nothing moved significantly." + _detectable(changes))
    if still:
        parts.append(
            "No significant change in: "
            + ", ".join(
                f"{c.label} ({c.delta * 100:+.1f} points, {_p_text(c)}"
                + (f", {c.verdict}" if c.verdict else "")
                + ")"
                for c in still
            )
            + "."
        )
    forgot = list(dict.fromkeys(c.task for c in moved if c.is_score and is_general(c.task) and c.delta < 0))
    if forgot:
        parts.append("Forgetting flagged on: " + ", ".join(forgot) + ".")
    return " ".join(parts)


def paragraphs(
    run: RunData, alpha: float = DEFAULT_ALPHA, changes: list[Change] | None = None
) -> dict[str, str]:
    """Method -> its generated paragraph, in run order."""
    changes = changes_vs_base(run, alpha) if changes is None else changes
    return {
        method: paragraph(method, [c for c in changes if c.method == method], alpha)
        for method in _methods(run)
    }
