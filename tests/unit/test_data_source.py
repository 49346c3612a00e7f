"""`data.source` from a local Parquet or JSONL file with NuminaMath-1.5's columns, as the paper profile maps them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cgd.problems import ProblemsConfig, load_problems
from harness.errors import HarnessError

# NuminaMath-1.5's columns (AI-MO/NuminaMath-1.5 on the Hub): no id column, no level.
NUMINA_ROWS = [
    {
        "problem": f"Compute {i} + {i + 1}.",
        "solution": f"Adding, {i} + {i + 1} = \\boxed{{{2 * i + 1}}}.",
        "answer": str(2 * i + 1),
        "problem_type": ["Algebra", "Number Theory"][i % 2],
        "question_type": "math-word-problem",
        "problem_is_valid": "Yes",
        "solution_is_valid": "Yes",
        "source": "synthetic_math",
        "synthetic": True,
    }
    for i in range(8)
]


def write(path, rows):
    if path.suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def paper_data(source) -> ProblemsConfig:
    from harness_app.run_config import resolve

    return replace(resolve("paper").data, source=str(source), n_problems=5, n_val=2)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_local_numinamath_file_gives_the_paper_profiles_problems(tmp_path, suffix):
    train, val = load_problems(paper_data(write(tmp_path / f"numina{suffix}", NUMINA_ROWS)))
    assert (len(train), len(val)) == (5, 2)
    by_question = {r["problem"]: r for r in NUMINA_ROWS}
    for p in train + val:
        row = by_question[p["question"]]
        assert (p["solution"], p["answer"], p["subject"]) == (
            row["solution"],
            row["answer"],
            row["problem_type"],
        )
        assert p["level"] is None and len(p["id"]) == 12  # ids from the question text: the source has none
    assert len({p["id"] for p in train + val}) == 7


def test_parquet_and_jsonl_of_the_same_rows_select_the_same_problems(tmp_path):
    parquet = load_problems(paper_data(write(tmp_path / "n.parquet", NUMINA_ROWS)))
    jsonl = load_problems(paper_data(write(tmp_path / "n.jsonl", NUMINA_ROWS)))
    assert parquet == jsonl


def test_a_bad_local_source_is_one_line(tmp_path):
    with pytest.raises(HarnessError, match=r"missing\.parquet: file not found"):
        load_problems(paper_data(tmp_path / "missing.parquet"))
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(HarnessError, match=r"broken\.parquet: not a readable Parquet file"):
        load_problems(paper_data(broken))
    no_answer = write(
        tmp_path / "no_answer.parquet", [{k: v for k, v in r.items() if k != "answer"} for r in NUMINA_ROWS]
    )
    with pytest.raises(HarnessError, match=r"row 0: missing column 'answer' \(for answer\)"):
        load_problems(paper_data(no_answer))
