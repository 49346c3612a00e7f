"""Run untrusted Python in a fresh, locked-down interpreter and report whether it earned a pass.

This is the parent half (used by `harness.checkers.code`): it spawns, feeds, watches, kills and
reaps. The child half, `sandbox_child.py`, is the script of each sandboxed interpreter
(`python -I -S -B -u sandbox_child.py`): it locks itself down before it runs untrusted code.
docs/sandbox.md has the threat model.

Two ways to run code:
- `run_script(source)`: one process runs the source; it passes when the source runs to its end.
- `run_judged(prompt, test, entry_point, candidate)`: the candidate program runs in one sandbox
  and answers calls; the trusted prompt + test run in a second sandbox and call it over a pipe
  that carries plain data only. Nothing the candidate does in its own process can reach the
  judge's `check`, its exit status or its completion token.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from harness.checkers.sandbox_lockdown import missing_isolation  # noqa: F401  (part of this module's API)

_CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_child.py")

# Output is kept as a head and a tail: the head shows what the program did, the tail holds the
# traceback. Everything between is read and dropped, so a flood never grows the parent.
_CAPTURE_HEAD_BYTES = 4096
_CAPTURE_TAIL_BYTES = 12288
_STATUS_CAPTURE_BYTES = 65536
_READ_CHUNK = 65536
_POLL_S = 0.01
# After the kill, pipes close at once; the grace only bounds a straggler that kept one open.
_DRAIN_GRACE_S = 1.0
_REAP_TIMEOUT_S = 5.0
_CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxError(RuntimeError):
    """The sandbox itself could not run (no interpreter, no pipes, no temporary directory)."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 16
    open_files: int = 64
    processes: int = 32  # RLIMIT_NPROC counts every process of the user; see docs/sandbox.md


@dataclass(frozen=True)
class ProcessOutcome:
    returncode: int | None
    stdout: str
    stderr: str
    layers: dict = field(default_factory=dict)  # empty: it never got as far as user code
    earned: bool = False  # wrote the run's token after finishing, i.e. did not stop early


@dataclass(frozen=True)
class SandboxResult:
    timed_out: bool
    main: ProcessOutcome
    candidate: ProcessOutcome | None = None
    seconds: float = 0.0


def run_script(source: str, limits: Limits = Limits()) -> SandboxResult:
    """Run `source` as __main__; `main.earned` says it ran to its end without raising."""
    return _run({"role": "script", "source": source}, limits)


def run_judged(
    prompt: str, test: str, entry_point: str, candidate_source: str, limits: Limits = Limits()
) -> SandboxResult:
    """Run `check(entry_point)` from `test` in a judge sandbox against the candidate program."""
    to_candidate, to_judge = os.pipe(), os.pipe()
    candidate = {
        "role": "candidate",
        "source": candidate_source,
        "entry_point": entry_point,
        "read_fd": to_candidate[0],
        "write_fd": to_judge[1],
    }
    judge = {
        "role": "judge",
        "prompt": prompt,
        "test": test,
        "entry_point": entry_point,
        "read_fd": to_judge[0],
        "write_fd": to_candidate[1],
    }
    return _run(judge, limits, helper=candidate, parent_fds=(*to_candidate, *to_judge))


@functools.cache
def isolation_report() -> dict[str, str]:
    """Which lock-down layers this machine grants a sandbox: layer -> "on" or "off: why"."""
    return dict(run_script("pass", Limits(timeout_s=60.0)).main.layers)


def _run(
    main_config: dict, limits: Limits, helper: dict | None = None, parent_fds: tuple = ()
) -> SandboxResult:
    started = time.monotonic()
    nonce = secrets.token_hex(16)
    children: list[_Child] = []
    try:
        try:
            if helper is not None:
                children.append(_Child(helper, limits))
            children.append(_Child({**main_config, "nonce": nonce}, limits))
        finally:
            # Only the children may hold the pipe ends: one's death must be the other's EOF.
            for fd in parent_fds:
                os.close(fd)
        timed_out = _supervise(children, started + limits.timeout_s)
    finally:
        for child in children:
            child.close()
    outcomes = [child.outcome(nonce) for child in children]
    return SandboxResult(
        timed_out=timed_out,
        main=outcomes[-1],
        candidate=outcomes[0] if helper is not None else None,
        seconds=time.monotonic() - started,
    )


class _Capture:
    def __init__(self, head: int, tail: int):
        self._head_limit, self._tail_limit = head, tail
        self.head, self.tail = bytearray(), bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self._head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self._tail_limit
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        gap = f"\n[... {self.dropped} bytes dropped ...]\n" if self.dropped else ""
        return self.head.decode(errors="replace") + gap + self.tail.decode(errors="replace")


class _Child:
    """One sandboxed interpreter: spawned in its own session, fed its config, then watched."""

    def __init__(self, config: dict, limits: Limits):
        if not sys.executable:
            raise SandboxError("no Python interpreter path (sys.executable is empty)")
        self.workdir = tempfile.mkdtemp(prefix="harness-sandbox-")
        status_read, status_write = os.pipe()
        rpc_fds = tuple(config[key] for key in ("read_fd", "write_fd") if key in config)
        try:
            self.proc = subprocess.Popen(
                # Unbuffered: a killed process's output up to the kill still reaches the verdict.
                [sys.executable, "-I", "-S", "-B", "-u", _CHILD_SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.workdir,
                env=_child_env(self.workdir),
                start_new_session=True,
                pass_fds=(status_write, *rpc_fds),
            )
        except OSError as exc:
            os.close(status_read)
            _remove_tree(self.workdir)
            raise SandboxError(f"cannot start the sandbox interpreter: {exc}") from exc
        finally:
            os.close(status_write)
        self.status_fd = status_read
        self.stdout = _Capture(_CAPTURE_HEAD_BYTES, _CAPTURE_TAIL_BYTES)
        self.stderr = _Capture(_CAPTURE_HEAD_BYTES, _CAPTURE_TAIL_BYTES)
        self.status = _Capture(_STATUS_CAPTURE_BYTES, 0)
        self.captures = {
            self.proc.stdout.fileno(): self.stdout,
            self.proc.stderr.fileno(): self.stderr,
            status_read: self.status,
        }
        payload = {
            **config,
            "status_fd": status_write,
            "limits": asdict(limits),
            "parent_pid": os.getpid(),
        }
        try:
            self.proc.stdin.write(json.dumps(payload).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it died while starting; its stderr says why and the verdict reports it

    def exited(self) -> bool:
        # WNOWAIT leaves the zombie in place, so its pid (the group id) cannot be reused
        # before the group is killed.
        if not hasattr(os, "waitid"):  # macOS: reaping here only risks a rare pid reuse
            return self.proc.poll() is not None
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        try:
            return os.waitid(os.P_PID, self.proc.pid, flags) is not None
        except ChildProcessError:
            return True

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        self.kill_group()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        os.close(self.status_fd)
        try:
            self.proc.wait(timeout=_REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass  # unkillable (stuck in the kernel); Popen reaps it when it finally goes
        _remove_tree(self.workdir)

    def outcome(self, nonce: str) -> ProcessOutcome:
        first, *rest = bytes(self.status.head).split(b"\n")
        try:
            layers = json.loads(first)
        except ValueError:
            layers = {}
        return ProcessOutcome(
            returncode=self.proc.returncode,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            layers=layers if isinstance(layers, dict) else {},
            earned=nonce.encode() in rest,
        )


def _supervise(children: list[_Child], deadline: float) -> bool:
    """Collect output until the last child exits or the deadline passes; True on timeout."""
    main = children[-1]
    selector = selectors.DefaultSelector()
    for child in children:
        for fd, capture in child.captures.items():
            selector.register(fd, selectors.EVENT_READ, capture)
    try:
        timed_out = False
        while not main.exited():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            _pump(selector, min(remaining, _POLL_S))
        for child in children:
            child.kill_group()
        grace_end = time.monotonic() + _DRAIN_GRACE_S
        while selector.get_map() and time.monotonic() < grace_end:
            _pump(selector, _POLL_S)
    finally:
        selector.close()
    return timed_out


def _pump(selector: selectors.BaseSelector, timeout: float) -> None:
    for key, _ in selector.select(timeout):
        chunk = os.read(key.fd, _READ_CHUNK)
        if chunk:
            key.data.add(chunk)
        else:
            selector.unregister(key.fd)


def _child_env(workdir: str) -> dict[str, str]:
    # Nothing from the parent's environment: API keys and tokens live there.
    return {
        "PATH": _CHILD_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
    }


def _remove_tree(path: str) -> None:
    # The program may have left directories without write or search permission.
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                try:
                    os.chmod(full, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)
