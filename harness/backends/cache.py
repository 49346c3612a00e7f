"""A SQLite cache in front of any backend.

Keyed by the backend fingerprint (model weights + tokenizer + numerics), a hash of the engine's own
source code and the full decoding request, so a re-run regenerates nothing, re-scoring never
regenerates, and a change to the engine (a scheduler fix, a kernel) never serves stale answers. lm-eval's own request
cache is keyed by model *name*, which silently reuses answers across different checkpoints.
Each finished batch is committed in one transaction: a kill loses at most the batch in flight.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.backends.base import GenRequest, GenResult
from harness.errors import HarnessError
from harness.io import stable_hash
from harness.paths import harness_home

# Modules whose code never shapes an answer of another engine: each remote engine hashes only itself
# and base.py, the local engine everything else in the package and the whole cpu_engine package
# (kernels included).
_REMOTE = {"openai.py", "vllm.py"}
_NOT_ENGINE = {"cache.py", "__init__.py"}


@functools.cache
def engine_code_version(module_name: str) -> str:
    """Hash of the sources that produce the outputs of the engine defined in `module_name`."""
    package = Path(__file__).parent
    own = Path(sys.modules[module_name].__file__ or "").name
    if own in _REMOTE:
        files = [package / "base.py", package / own]
    else:
        engine = Path(importlib.util.find_spec("cpu_engine").origin).parent  # not imported: only hashed
        files = sorted(
            (
                f
                for folder in (package, engine)
                for f in folder.iterdir()
                if f.suffix in (".py", ".c", ".h") and f.name not in _REMOTE | _NOT_ENGINE
            ),
            key=lambda f: f.name,
        )
    return stable_hash([(f.name, f.read_bytes().decode("utf-8")) for f in files])[:16]


class ResultCache:
    def __init__(self, path: Path | None = None):
        self.path = path or harness_home() / "cache" / "generations.sqlite"
        self._lock = threading.Lock()
        with self._writing():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()

    @contextmanager
    def _writing(self):
        """A full disk or a read-only cache is one clear error; SQLite rolls the transaction back."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            raise HarnessError(
                f"cannot write the generation cache {self.path}: {exc}; finished results "
                "are kept, re-run the same command once it is writable"
            ) from exc

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk
                ):
                    found[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, dict]) -> None:
        with self._lock, self._writing(), self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()


class CachedBackend:
    """Wraps a backend; answers from the cache and sends only the misses.

    The inner backend reports each result as it finishes (`on_result`), and each is committed at
    once, so an interrupted run loses nothing that was already generated.
    """

    def __init__(self, inner, cache: ResultCache | None = None):
        self.inner = inner
        self.cache = cache or ResultCache()
        self.fingerprint = inner.fingerprint
        self.code_version = engine_code_version(type(inner).__module__)
        self.tokenizer = getattr(inner, "tokenizer", None)

    def __getattr__(self, name):  # model, device, ... of the wrapped backend
        return getattr(self.inner, name)

    def render(self, messages):
        return self.inner.render(messages)

    def _key(self, kind: str, payload) -> str:
        return stable_hash([kind, self.fingerprint, self.code_version, payload])

    def generate(
        self,
        requests: Sequence[GenRequest],
        on_result: Callable | None = None,
        accept: Callable[[GenResult], bool] | None = None,
    ) -> list[GenResult]:
        """`accept`: the caller's test of a usable answer; one that fails it is returned, never cached,
        so asking again (now or in a later run) reaches the backend."""
        requests = list(requests)
        keys = [self._key("gen", r.cache_fields()) for r in requests]
        hits = self.cache.get_many(list(dict.fromkeys(keys)))
        results: list[GenResult | None] = [
            GenResult(cached=True, **hits[k]) if k in hits else None for k in keys
        ]
        if accept is not None:  # an entry an older version cached is not served either
            results = [r if r is None or accept(r) else None for r in results]
        todo_keys = list(dict.fromkeys(k for k, r in zip(keys, results) if r is None))
        first = _first_index(keys, todo_keys)
        fresh: dict[str, GenResult] = {}

        def store(j: int, result: GenResult) -> None:
            key = todo_keys[j]
            fresh[key] = result
            if accept is None or accept(result):
                self.cache.put_many({key: _encode(result)})
            if on_result is not None:
                on_result(first[key], result)

        if todo_keys:
            self.inner.generate([requests[first[k]] for k in todo_keys], on_result=store)
        return [r if r is not None else fresh[k] for r, k in zip(results, keys)]

    def loglikelihood(self, requests, chunk: int = 256):
        requests = [(list(c), list(t)) for c, t in requests]
        keys = [self._key("ll", r) for r in requests]
        hits = self.cache.get_many(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in hits))
        first = _first_index(keys, todo)
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            outs = self.inner.loglikelihood([requests[first[k]] for k in part])
            encoded = {k: [float(o[0]), bool(o[1])] for k, o in zip(part, outs)}
            self.cache.put_many(encoded)
            hits.update(encoded)
        return [(hits[k][0], bool(hits[k][1])) for k in keys]


def _encode(r: GenResult) -> dict:
    return {
        "text": r.text,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "finish_reason": r.finish_reason,
        "seconds": r.seconds,
        "extra": r.extra,
    }


def _first_index(keys: list[str], wanted: list[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    return {k: first[k] for k in wanted}
