"""Training problems: (id, question, reference solution, gold answer) from MATH or any dataset.

The default source is the MATH training side in $HARNESS_DATA_DIR/math_train (12,000 problems, no
MATH-500 problem), minus the 14 near-duplicates of MATH-500 problems its README lists. Any other
dataset works when its question / solution / answer columns are named in `columns`: a Hub dataset,
or a local JSONL or Parquet file (a Hub dataset's own shards, e.g. NuminaMath-1.5's, downloaded once).

Selection is a seeded shuffle of the filtered pool: the first `n_val` problems are the validation
split (for checkpoint selection; never a benchmark test set), the next `n_problems` the
training problems. So the validation split does not move when `n_problems` changes.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.config import setting
from harness.errors import HarnessError
from harness.io import iter_jsonl, stable_hash

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "math_train"

# Rows of math_train that share >= 0.8 of their word 5-grams with a MATH-500 problem
# (shared/data/README.md); dropped so no training problem is a near-copy of a test problem.
NEAR_DUPLICATES = frozenset(
    f"{i}.json"
    for i in (
        "train/geometry/181",
        "train/geometry/1000",
        "train/precalculus/172",
        "train/precalculus/208",
        "train/precalculus/787",
        "test/prealgebra/1687",
        "train/prealgebra/1013",
        "train/geometry/721",
        "train/algebra/2835",
        "train/algebra/374",
        "train/precalculus/918",
        "train/number_theory/998",
        "train/prealgebra/1072",
        "test/geometry/757",
    )
)

MATH_COLUMNS = {
    "id": "unique_id",
    "question": "problem",
    "solution": "solution",
    "answer": "answer",
    "subject": "subject",
    "level": "level",
}
REQUIRED = ("question", "solution", "answer")


@dataclass(frozen=True)
class ProblemsConfig:
    """The `data:` section: which training problems, and how long the student's probe may answer."""

    source: str = setting(
        DEFAULT_SOURCE,
        "math_train ($HARNESS_DATA_DIR), a local .jsonl or .parquet file, or hf:<dataset id>[:<split>]",
    )
    columns: dict[str, str] = setting(
        {},
        "our name -> the source's column (question, solution, answer, id, subject, level); "
        "unnamed ones keep MATH's names",
    )
    n_problems: int | None = setting(
        16, "training problems; null: every problem left after the validation split", minimum=1
    )
    n_val: int = setting(
        4, "validation problems held out of the same pool; never a benchmark test set", minimum=0
    )
    subjects: list[str] = setting([], "keep only these subjects, e.g. [Algebra, Prealgebra]; empty: all")
    levels: list[int] = setting([], "keep only these levels, e.g. [1, 2]; empty: all")
    drop_near_duplicates: bool = setting(True, "drop the 14 math_train near-copies of MATH-500 problems")
    decontaminate: bool = setting(
        False,
        "drop problems whose question or solution shares a 13-gram (lm-eval's decontamination rule) "
        "with any benchmark's test item (harness/contamination.py)",
    )
    probe_max_new_tokens: int = setting(256, "tokens of the student's first answer y' (the probe)", minimum=1)
    right_ratio: float | None = setting(
        None,
        "share of kept items whose attempt the critique judged right (the CGD authors' filter_crit_ratios); "
        "the other side is subsampled, seeded, and every method keeps the same problems; null keeps all",
        minimum=0.0,
    )
    seed: int = setting(0, "seed of the problem shuffle: the run's first seed", key=False)

    def column_map(self) -> dict[str, str]:
        return {**MATH_COLUMNS, **self.columns}

    def as_dict(self) -> dict:
        return asdict(self)


def load_problems(cfg: ProblemsConfig) -> tuple[list[dict], list[dict]]:
    """(train, validation) problem rows with keys id, question, solution, answer, subject, level."""
    pool = [p for p in _read_source(cfg) if _selected(p, cfg)]
    if cfg.decontaminate:
        pool = _decontaminated(pool)
    rng = random.Random(cfg.seed)
    rng.shuffle(pool)
    n = len(pool) - cfg.n_val if cfg.n_problems is None else cfg.n_problems
    if n < 1 or len(pool) < cfg.n_val + n:
        raise HarnessError(
            f"{cfg.source}: only {len(pool)} problems match the filters, "
            f"but n_val={cfg.n_val} + n_problems={cfg.n_problems} were asked for"
        )
    return pool[cfg.n_val : cfg.n_val + n], pool[: cfg.n_val]


def _decontaminated(pool: list[dict]) -> list[dict]:
    from harness.contamination import all_test_sets, drop_contaminated

    kept, dropped = drop_contaminated(pool, all_test_sets())
    log.info(
        "data.decontaminate: dropped %d of %d problems sharing a 13-gram with a test item",
        len(dropped),
        len(pool),
    )
    return kept


def _selected(p: dict, cfg: ProblemsConfig) -> bool:
    if cfg.drop_near_duplicates and p["id"] in NEAR_DUPLICATES:
        return False
    if cfg.subjects and p.get("subject") not in cfg.subjects:
        return False
    return not cfg.levels or p.get("level") in cfg.levels


def _read_source(cfg: ProblemsConfig) -> list[dict]:
    if cfg.source == DEFAULT_SOURCE:
        from harness.data import load_math_train

        raw, where = load_math_train(), "math_train"
    elif cfg.source.startswith("hf:"):
        raw, where = _hub_rows(cfg.source.removeprefix("hf:")), cfg.source
    else:
        path = Path(cfg.source).expanduser()
        raw, where = _local_rows(path), str(path)
    return [map_columns(row, cfg.column_map(), f"{where} row {i}") for i, row in enumerate(raw)]


def _local_rows(path: Path) -> list[dict]:
    if path.suffix != ".parquet":
        return list(iter_jsonl(path))
    if not path.is_file():
        raise HarnessError(f"{path}: file not found")
    import pyarrow
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_table(path).to_pylist()
    except pyarrow.ArrowException as exc:
        raise HarnessError(f"{path}: not a readable Parquet file ({exc})") from None


def _hub_rows(name: str) -> list[dict]:
    import datasets

    dataset_id, _, split = name.partition(":")
    try:
        return list(datasets.load_dataset(dataset_id, split=split or "train"))
    except Exception as exc:  # the Hub client raises many types; the user needs one line
        raise HarnessError(f"could not load training problems from {dataset_id!r} ({exc})") from None


def map_columns(row: dict, columns: dict[str, str], where: str) -> dict:
    missing = [f"{columns.get(k, k)!r} (for {k})" for k in REQUIRED if columns.get(k, k) not in row]
    if missing:
        raise HarnessError(f"{where}: missing column {', '.join(missing)}; map it with columns")
    out = {k: row.get(columns.get(k, k)) for k in ("question", "solution", "answer", "subject", "level")}
    out["answer"] = str(out["answer"]).strip()
    source_id = row.get(columns.get("id", "id"))
    out["id"] = str(source_id) if source_id is not None else question_id(out["question"])
    return out


def question_id(question: str) -> str:
    """The id of a problem whose source has none: its text identifies it."""
    return stable_hash(question)[:12]
