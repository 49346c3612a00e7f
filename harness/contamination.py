"""Contamination check: 13-gram overlap between the benchmarks' test items and a run's training text.

The rule is lm-eval's decontamination (lm_eval/decontamination/janitor.py): lower-case ASCII letters,
delete ASCII punctuation, split on whitespace, and call a test item contaminated when any of its
word 13-grams occurs in the other text. (lm-eval's module prints a warning and a traceback on
import when its C++ helper is missing, so the three lines of its rule are restated here;
tests/unit/test_contamination.py checks them against lm-eval's own functions.) A text shorter than 13
words has no 13-gram and can never match.

Each test item contributes its question and, where the set has them, its options or reference
solution; each run source (training problems, the student's attempts, the teacher's critiques and
refined answers) is read field by field, so no n-gram spans two fields. N-grams are kept only as
hashes in memory: a redacted benchmark's text (GPQA) is never written anywhere.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import layout
from harness.errors import HarnessError

NGRAM = 13
_NORMALIZE = str.maketrans(
    string.ascii_lowercase + string.ascii_uppercase, string.ascii_lowercase * 2, string.punctuation
)


def normalize(text: str) -> str:
    """lm-eval's Janitor.normalize_string."""
    return text.translate(_NORMALIZE)


def ngrams(text: str, n: int = NGRAM) -> Iterator[str]:
    """Word n-grams of the normalised text, as lm-eval's word_ngrams forms them."""
    words = normalize(text).split()
    return (" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def fingerprints(text: str, n: int = NGRAM) -> set[int]:
    """The text's n-grams as hashes (in-process only: Python's str hash is salted per process)."""
    return {hash(gram) for gram in ngrams(text, n)}


@dataclass
class ItemIndex:
    """Hashes of every test item's n-grams -> the (benchmark, item id)s that contain them."""

    n: int = NGRAM
    owners: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # benchmark -> test items

    def add(self, task: str, item: str, texts: Iterable[str]) -> None:
        for text in texts:
            for key in fingerprints(text, self.n):
                self.owners.setdefault(key, set()).add((task, item))

    def matches(self, text: str) -> set[tuple[str, str]]:
        """The test items sharing an n-gram with `text`."""
        hits: set[tuple[str, str]] = set()
        for key in fingerprints(text, self.n):
            hits |= self.owners.get(key, set())
        return hits


def index_items(
    tasks: Iterable[str], n: int = NGRAM, load: Callable[[str], list[dict]] | None = None
) -> ItemIndex:
    """The index of the full test sets of `tasks` (every item, not only the ones a run evaluated).
    Benchmarks that share a data set (GPQA's two tasks, TruthfulQA's) are indexed under each name."""
    from harness import registry

    index = ItemIndex(n)
    for task in tasks:
        bench = registry.get(task)
        rows = load(task) if load else bench.load_rows()
        index.sizes[task] = len(rows)
        for row in rows:
            index.add(task, registry.item_id(row), bench.contamination_texts(row))
    return index


# ------------------------------------------------------------------------------ a run's sources --

# Report name -> (file in the run directory, the fields read from each row).
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "training problems": (layout.TRAIN_PROBLEMS, ("question", "solution")),
    "student attempts": (layout.ATTEMPTS, ("attempt",)),
    "critiques": (layout.ANNOTATIONS, ("critique",)),
    "refined answers": (layout.ANNOTATIONS, ("refined",)),
}


@dataclass(frozen=True)
class Overlap:
    """One (benchmark, source) pair: which test items share an n-gram with which source rows."""

    benchmark: str
    source: str
    test_items: int  # items in the benchmark's test set
    items: tuple[str, ...]  # test item ids with any overlap
    source_rows: int  # rows the source has
    rows: tuple[str, ...]  # source row ids with any overlap


def row_hits(index: ItemIndex, row: dict, fields: Iterable[str]) -> set[tuple[str, str]]:
    hits: set[tuple[str, str]] = set()
    for name in fields:
        if isinstance(row.get(name), str):
            hits |= index.matches(row[name])
    return hits


def check_run(run_dir: str | Path, index: ItemIndex) -> list[Overlap]:
    """Every (benchmark, source) pair of a run directory; sources the run does not have are left out."""
    from harness.io import read_jsonl

    root = Path(run_dir)
    out = []
    for source, (path, fields) in SOURCES.items():
        if not (root / path).is_file():
            continue
        rows = read_jsonl(root / path)
        by_task: dict[str, tuple[set[str], set[str]]] = {t: (set(), set()) for t in index.sizes}
        for i, row in enumerate(rows):
            for task, item in row_hits(index, row, fields):
                by_task[task][0].add(item)
                by_task[task][1].add(str(row.get("id", i)))
        for task, (items, hit_rows) in by_task.items():
            out.append(Overlap(task, source, index.sizes[task], _sorted(items), len(rows), _sorted(hit_rows)))
    return out


def _sorted(ids: set[str]) -> tuple[str, ...]:
    from harness.rundata import natural_key

    return tuple(sorted(ids, key=natural_key))


def drop_contaminated(
    rows: list[dict], index: ItemIndex, fields: tuple[str, ...] = ("question", "solution")
) -> tuple[list[dict], list[str]]:
    """(rows without any n-gram of a test item, ids of the rows dropped), row order kept."""
    kept, dropped = [], []
    for row in rows:
        (dropped.append(str(row.get("id"))) if row_hits(index, row, fields) else kept.append(row))
    return kept, dropped


def all_test_sets() -> ItemIndex:
    """Every benchmark the registry knows: what `data.decontaminate` removes training problems against."""
    from harness.registry import BENCHMARKS

    try:
        return index_items(BENCHMARKS)
    except HarnessError as exc:
        raise HarnessError(f"data.decontaminate needs every benchmark's test set: {exc}") from None
