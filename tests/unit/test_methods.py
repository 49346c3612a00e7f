"""The example builders: exact prompts/completions, the derangement, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cgd import methods, prompts
from harness.errors import HarnessError

FIXTURE = Path(__file__).parents[1] / "cases" / "methods_fixture.jsonl"
# Change the wording in cgd/prompts.py → bump PROMPTS_VERSION and record the new fingerprint here.
PINNED_FINGERPRINTS = {
    "cgd-prompts-v1": "4889b31c3e8c8932",
    "cgd-prompts-v2": "ecdd2c32ba87cc46",
    "cgd-prompts-v3": "f5e235126aa2faf9",
}

# The math benchmarks' prompt (harness/registry.py MATH_PROMPT): the probe asks as the benchmarks do.
SOLVE_2_PLUS_3 = "What is $2+3$?\n\nSolve this step by step, then write the final answer inside \\boxed{}."
ATTEMPT_BLOCK = "Problem:\nWhat is $2+3$?\n\nStudent's attempt:\n2+3 is 6, so \\boxed{6}."
CRITIQUE_1 = "The final answer is wrong: 2+3 is 5, not 6.\nConclusion: wrong"
REFINED_1 = "We add: $2+3=5$. The final answer is $\\boxed{5}$."
REFINE_HEAD = (
    "Here is a math problem, a student's attempt to solve it, and a review of that attempt. Taking the "
    "review into account, write a complete and correct solution of the problem. Reason step by step, and "
    "give the final answer in \\boxed{}.\n\n"
)
# (user message, assistant message) that each method makes of the first fixture row.
EXPECTED_FIRST_ROW = {
    "sft": (SOLVE_2_PLUS_3, "Adding, $2+3=5$, so the answer is $\\boxed{5}$."),
    "distill-sft": (SOLVE_2_PLUS_3, REFINED_1),
    "cft": (
        "Here is a math problem and a student's attempt to solve it. Review the attempt: check every "
        "calculation and every logical step, name each mistake or missing step, and say whether the final "
        'answer is correct. Finish with one line that reads exactly "Conclusion: right" if the final answer '
        'is correct, or "Conclusion: wrong" if it is not.\n\n' + ATTEMPT_BLOCK,
        CRITIQUE_1,
    ),
    "cgd": (REFINE_HEAD + ATTEMPT_BLOCK + "\n\nReview:\n" + CRITIQUE_1, REFINED_1),
    "refine-nocritique": (
        "Here is a math problem and a student's attempt to solve it. Write a complete and correct solution "
        "of the problem. Reason step by step, and give the final answer in \\boxed{}.\n\n" + ATTEMPT_BLOCK,
        REFINED_1,
    ),
    # Seed 0 deranges [0, 1, 2, 3] into [2, 0, 3, 1]: row 0 gets row 2's critique.
    "cgd-shuffled": (
        REFINE_HEAD + ATTEMPT_BLOCK + "\n\nReview:\nThe attempt gives no final answer; 3 times 7 is 21.\n"
        "Conclusion: wrong",
        REFINED_1,
    ),
    "cgd-generic": (
        REFINE_HEAD
        + ATTEMPT_BLOCK
        + "\n\nReview:\nThe attempt may contain mistakes. Go through it again step "
        "by step, correct any error you find, and make sure the final answer is right and given in \\boxed{}.",
        REFINED_1,
    ),
}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_every_registered_method_has_an_expected_example():
    assert set(EXPECTED_FIRST_ROW) == set(methods.METHODS)


@pytest.mark.parametrize("name", sorted(EXPECTED_FIRST_ROW))
def test_builder_exact_output_on_first_row(rows, name):
    user, assistant = EXPECTED_FIRST_ROW[name]
    first = methods.build_examples(name, rows, seed=0)[0]
    assert first == {
        "id": "fx-1",
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": assistant}],
    }


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_every_row_becomes_one_prompt_completion_example(rows, name):
    built = methods.build_examples(name, rows, seed=0)
    assert [e["id"] for e in built] == [r["id"] for r in rows]
    for row, ex in zip(rows, built):
        assert [m["role"] for m in ex["prompt"]] == ["user"]
        assert [m["role"] for m in ex["completion"]] == ["assistant"]
        user, answer = ex["prompt"][0]["content"], ex["completion"][0]["content"]
        assert row["question"] in user
        target = {"sft": row["solution"], "cft": row["critique"]}.get(name, row["refined"])
        assert answer == target
        # The critique is only ever input for cgd: it never leaks into what the student learns to write.
        if name.startswith("cgd"):
            assert row["critique"] not in answer


def test_cgd_prompt_holds_problem_attempt_and_own_critique_in_order(rows):
    for row, ex in zip(rows, methods.build_examples("cgd", rows)):
        user = ex["prompt"][0]["content"]
        positions = [user.index(row["question"]), user.index(row["attempt"]), user.index(row["critique"])]
        assert positions == sorted(positions)


def test_inference_style_methods_show_the_problem_alone(rows):
    for name in ("sft", "distill-sft"):
        for row, ex in zip(rows, methods.build_examples(name, rows)):
            assert ex["prompt"][0]["content"] == prompts.solve_request(row["question"])


@pytest.mark.parametrize("n", [2, 3, 5, 17, 64])
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_derangement_is_a_permutation_without_fixed_points(n, seed):
    perm = methods.derangement(n, seed)
    assert sorted(perm) == list(range(n))
    assert all(perm[i] != i for i in range(n))
    assert perm == methods.derangement(n, seed)


def test_derangement_depends_on_the_seed():
    assert len({tuple(methods.derangement(20, s)) for s in range(10)}) > 1


def test_derangement_needs_two_problems():
    with pytest.raises(HarnessError, match="at least 2"):
        methods.derangement(1, 0)


@pytest.mark.parametrize("seed", range(20))
def test_shuffled_critique_never_comes_from_its_own_problem(rows, seed):
    for row, ex in zip(rows, methods.build_examples("cgd-shuffled", rows, seed)):
        review = ex["prompt"][0]["content"].split("Review:\n", 1)[1]
        assert review != row["critique"]
        assert review in {r["critique"] for r in rows}


def test_unknown_method_lists_the_valid_ones(rows):
    with pytest.raises(HarnessError) as err:
        methods.parse_methods("sft,dpo")
    assert "dpo" in str(err.value)
    for name in methods.METHODS:
        assert name in str(err.value)
    with pytest.raises(HarnessError, match="valid methods"):
        methods.build_examples("cfg", rows)


def test_missing_column_is_named(rows):
    broken = [{k: v for k, v in r.items() if k != "critique"} for r in rows]
    with pytest.raises(HarnessError, match="critique"):
        methods.build_examples("cft", broken)
    assert methods.build_examples("sft", broken)  # sft needs no teacher output


def test_only_sft_needs_no_teacher():
    assert [m for m in methods.METHODS if not methods.uses_teacher(m)] == ["sft"]


def test_prompt_texts_are_pinned_to_their_version():
    assert PINNED_FINGERPRINTS.get(prompts.PROMPTS_VERSION) == prompts.templates_fingerprint(), (
        "cgd/prompts.py changed: bump PROMPTS_VERSION and pin the new fingerprint"
    )


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("Looks fine.\nConclusion: right", True),
        ("Bad.\nConclusion: wrong.", False),
        ("**Conclusion: Wrong**\n", False),
        ("Conclusion: right\nOn reflection...\nConclusion: wrong", False),
        ("No verdict here.", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert prompts.parse_verdict(text) is verdict
