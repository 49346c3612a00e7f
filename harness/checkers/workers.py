"""Killable worker processes for checks that may hang in C code or exhaust memory.

`run_in_workers(items, target, timeout_s)` calls `target(*item, timeout_s)` for each item in a
small pool of separate Python processes and returns the results in input order. A worker still
busy `timeout_s` plus a margin after it got its item is killed and replaced, and that item's
result is None; so is the result of an item that crashed its worker or ran out of memory. The
target must return picklable data and be importable as "package.module:function".
"""

from __future__ import annotations

import importlib
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_messages
from pathlib import Path
from typing import Any

# A killed worker has had timeout_s to report a timeout itself; the margin covers a loaded machine.
_KILL_MARGIN_S = 1.0
_WORKER_START_LIMIT_S = 120.0
_WORKER_MEMORY_BYTES = 4 * 1024**3
_MAX_DEFAULT_WORKERS = 4


def run_in_workers(
    items: Sequence[tuple], target: str, timeout_s: float, workers: int | None = None, warmup: tuple = ()
) -> list[Any]:
    """Results of `target(*item, timeout_s)` in input order; None where the item timed out or crashed.

    `warmup` (arguments for target) runs once in each worker before it reports ready, so no item's
    deadline pays for first-use set-up (parsers, regex compilation).
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    queue = deque(range(len(items)))
    pool: list[_Worker] = []
    try:
        pool = [_Worker(target, warmup) for _ in range(min(len(items), workers or _default_worker_count()))]
        while queue or any(w.job is not None for w in pool):
            for worker in pool:
                if worker.ready and worker.job is None and queue:
                    _dispatch(worker, queue, items, timeout_s)
            wait_s = max(0.0, min(w.deadline for w in pool) - time.monotonic())
            readable = wait_for_messages([w.inbox for w in pool], timeout=wait_s)
            for worker in list(pool):
                alive = worker.inbox not in readable or _receive(worker, results)
                if alive and time.monotonic() <= worker.deadline:
                    continue
                _retire(worker)
                pool.remove(worker)
                if queue:
                    pool.append(_Worker(target, warmup))
    finally:
        for worker in pool:
            worker.stop()
    return results


def _default_worker_count() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(_MAX_DEFAULT_WORKERS, cpus))


class _Worker:
    """One process, spoken to over two private pipes with multiprocessing's framing.

    A plain `python -c` child rather than multiprocessing.Process: spawn would re-import the
    caller's main module (the whole CLI, torch included) in every worker, and fork is unsafe
    once the caller runs threads.
    """

    def __init__(self, target: str, warmup: tuple) -> None:
        self.target = target
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        repo_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
        command = (
            f"from harness.checkers.workers import serve; "
            f"serve({to_child_r}, {from_child_w}, {target!r}, {warmup!r})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", command],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        self.outbox = Connection(to_child_w, readable=False)
        self.inbox = Connection(from_child_r, writable=False)
        self.ready = False
        self.job: int | None = None
        self.deadline = time.monotonic() + _WORKER_START_LIMIT_S

    def assign(self, index: int, item: tuple, timeout_s: float) -> None:
        self.job = index
        self.deadline = time.monotonic() + timeout_s + _KILL_MARGIN_S
        self.outbox.send((index, tuple(item), timeout_s))

    def idle(self) -> None:
        self.job = None
        self.deadline = float("inf")

    def stop(self) -> None:
        self.outbox.close()
        self.inbox.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _limit_memory(limit: int) -> None:
    """A runaway computation (a huge big-integer) should fail in its worker, not swap the machine."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def serve(inbox_fd: int, outbox_fd: int, target: str, warmup: tuple) -> None:
    """Worker loop: (index, item, timeout_s) in, (index, result) out; result None on MemoryError."""
    _limit_memory(_WORKER_MEMORY_BYTES)
    module, name = target.split(":")
    function = getattr(importlib.import_module(module), name)
    inbox = Connection(inbox_fd, writable=False)
    outbox = Connection(outbox_fd, readable=False)
    if warmup:
        function(*warmup)
    outbox.send("ready")
    while True:
        try:
            index, item, timeout_s = inbox.recv()
        except EOFError:
            return
        try:
            result = function(*item, timeout_s)
        except MemoryError:
            result = None
        outbox.send((index, result))


def _dispatch(worker: _Worker, queue: deque[int], items: list, timeout_s: float) -> None:
    index = queue.popleft()
    try:
        worker.assign(index, items[index], timeout_s)
    except OSError:
        # The worker died between jobs: the item is not to blame, so it goes back in line.
        queue.appendleft(index)
        worker.job = None
        worker.deadline = 0.0


def _receive(worker: _Worker, results: list) -> bool:
    """Take one message from the worker; False if it has died."""
    try:
        message = worker.inbox.recv()
    except (EOFError, OSError):
        return False
    if message != "ready":
        index, result = message
        results[index] = result
    worker.ready = True
    worker.idle()
    return True


def _retire(worker: _Worker) -> None:
    """Stop a dead or overdue worker; its item, if any, keeps the result None (timed out or crashed)."""
    worker.stop()
    if not worker.ready:
        module = worker.target.split(":")[0]
        raise RuntimeError(
            f"checker worker did not start (exit code {worker.process.returncode}); "
            f"try: {sys.executable} -c 'import {module}'"
        )
