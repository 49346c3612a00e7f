"""Atomic file writes, strict JSONL reading and stable hashing.

Every artefact in a run directory is written through here so that a crash (or kill -9) leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

# mkstemp creates files 0600; artefacts should get the usual mode the user's umask gives.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    with _failed_write_is_one_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with _failed_write_is_one_error(path, cleanup=lambda: Path(tmp).unlink(missing_ok=True)):
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return path


def atomic_write_dir(target: str | Path, build: Callable[[Path], Any], keep_existing: bool = False) -> Path:
    """`build` fills a temp sibling of `target`, which then replaces it: a crash leaves the old dir or none.

    `keep_existing`: when another process puts its own `target` in place between the removal and
    the rename, that one stays and this build is dropped (a shared cache built by whoever is first).
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with _failed_write_is_one_error(target, cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True)):
        build(tmp)
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (keep_existing and target.exists()):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextmanager
def _failed_write_is_one_error(path: Path, cleanup: Callable[[], Any] | None = None):
    """On any failure remove the partial output; an OSError (disk full, read-only) becomes one HarnessError."""
    try:
        yield
    except BaseException as exc:
        if cleanup is not None:
            cleanup()
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def write_error(path: str | Path, exc: OSError) -> HarnessError:
    """One line for a failed write (disk full, read-only or forbidden run directory); the old file is intact."""
    return HarnessError(
        f"cannot write {path}: {exc.strerror or exc}; nothing was half-written, "
        "re-run the same command once the directory is writable"
    )


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, so equal data gives byte-identical files."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2, default=str) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, dumps(obj))


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in rows]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None


def iter_jsonl(path: str | Path, lines: Iterable[str] | None = None) -> Iterator[dict]:
    """Yield the rows of a JSON Lines file; a malformed row raises with its file and line."""
    path = Path(path)
    if lines is None:
        try:
            fh = path.open(encoding="utf-8")
        except FileNotFoundError:
            raise HarnessError(f"{path}: file not found") from None
        with fh:
            yield from iter_jsonl(path, fh)
        return
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{lineno}: malformed JSON line ({exc.msg})") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield row


def read_jsonl(path: str | Path) -> list[dict]:
    return list(iter_jsonl(path))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """Hash of any JSON-able object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def to_csv(columns: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()
