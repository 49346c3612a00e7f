"""The child half of the code sandbox: runs as the script of a fresh, isolated interpreter.

`harness.checkers.sandbox` starts `python -I -S -B -u sandbox_child.py`; this file reads its
instructions from stdin, locks the process down (rlimits, namespaces, Landlock, seccomp: sandbox_lockdown.py),
and only then runs untrusted code. That interpreter has no site-packages and no project on its path, so this
file imports nothing but the standard library. docs/sandbox.md has the threat model.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import traceback

# ---------------------------------------------------------------- the child process


def _child_main() -> None:
    config = json.loads(sys.stdin.buffer.read())
    # The instructions (and the judge's token) must not be readable again once user code runs.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    stdout, stderr, write, exit_now = sys.stdout, sys.stderr, os.write, os._exit
    status_fd = config.pop("status_fd")
    nonce = config.pop("nonce", None)
    for fd in (status_fd, config.get("read_fd"), config.get("write_fd")):
        if fd is not None:
            os.set_inheritable(fd, False)  # a program that execs another binary drops them
    layers = _sibling("sandbox_lockdown").lock_down(config["limits"], config["parent_pid"])
    write(status_fd, (json.dumps(layers) + "\n").encode())
    try:
        _ROLES[config["role"]](config)
        if nonce is not None:
            write(status_fd, (nonce + "\n").encode())
        code = 0
    except SystemExit as stop:
        print(f"program exited before it finished: SystemExit({stop.code!r})", file=stderr)
        code = 1
    except BaseException:
        traceback.print_exc(file=stderr)
        code = 1
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    # No interpreter shutdown: user atexit handlers and stray threads must not decide the exit.
    exit_now(code)


def _sibling(name: str):
    """A module next to this file, loaded by its path: the child's interpreter runs isolated (-I -S), with
    neither the project nor this directory on sys.path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        name, os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _execute(source: str, filename: str, namespace: dict) -> dict:
    # Registered so that tracebacks quote the failing line (the verdict detail shows it).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def _run_script(config: dict) -> None:
    _execute(config["source"], "<program>", {"__name__": "__main__"})


def _serve_candidate(config: dict) -> None:
    # __name__ is not "__main__": demo blocks a model appends (input(), prints) stay unrun.
    namespace = _execute(config["source"], "<program>", {"__name__": "__candidate__"})
    function = namespace.get(config["entry_point"])
    channel = _Channel(config["read_fd"], config["write_fd"])
    while (request := channel.receive()) is not None:
        try:
            if not callable(function):
                raise NameError(f"the program does not define {config['entry_point']}()")
            args, kwargs = _decode(request["args"]), _decode(request["kwargs"])
            reply = {"value": _encode(function(*args, **kwargs))}
        except BaseException as exc:  # noqa: BLE001 - the judge reports it as the call's failure
            reply = {"raised": f"{type(exc).__name__}: {exc}"[:500]}
        channel.send(reply)


def _judge(config: dict) -> None:
    namespace = _execute(config["prompt"], "<prompt>", {"__name__": "__judge__"})
    _execute(config["test"], "<test>", namespace)
    candidate = _RemoteCandidate(_Channel(config["read_fd"], config["write_fd"]))
    namespace[config["entry_point"]] = candidate
    namespace["check"](candidate)


_ROLES = {"script": _run_script, "candidate": _serve_candidate, "judge": _judge}


class CandidateError(Exception):
    """The candidate raised, crashed, or answered with something that is not plain data."""


class _RemoteCandidate:
    def __init__(self, channel: _Channel):
        self._channel = channel

    def __call__(self, *args, **kwargs):
        request = {"args": _encode(list(args)), "kwargs": _encode(kwargs)}
        try:
            self._channel.send(request)
            reply = self._channel.receive()
        except BrokenPipeError:
            reply = None
        if reply is None:
            raise CandidateError("the candidate process ended (crash, exit or kill)")
        if "raised" in reply:
            raise CandidateError(f"the candidate raised {reply['raised']}")
        return _decode(reply["value"])


class _Channel:
    """Newline-delimited JSON over two pipe ends; a message larger than the cap is an error."""

    _MAX_MESSAGE_BYTES = 32 * 1024 * 1024

    def __init__(self, read_fd: int, write_fd: int):
        self._read_fd, self._write_fd = read_fd, write_fd
        self._buffer = bytearray()

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]

    def receive(self) -> dict | None:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > self._MAX_MESSAGE_BYTES:
                raise CandidateError("message over the size cap")
            chunk = os.read(self._read_fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        message = json.loads(line)
        if not isinstance(message, dict):
            raise CandidateError("malformed message")
        return message


# Values cross between sandboxes as JSON; containers other than lists are tagged objects, so an
# untagged JSON object never occurs and a decoded value is always plain data of builtin types.
_SCALARS = (type(None), bool, int, float, str)


def _encode(value):
    if isinstance(value, bool) or value is None:
        return value
    for plain in (int, float, str):  # subclasses travel as their plain value
        if isinstance(value, plain):
            return plain(value) if type(value) is not plain else value
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [_encode(item) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return {kind: [_encode(item) for item in value]}
    if isinstance(value, bytes):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    raise TypeError(f"a {type(value).__name__} cannot cross the sandbox boundary")


_BUILDERS = {
    "tuple": lambda items: tuple(_decode(item) for item in items),
    "set": lambda items: {_decode(item) for item in items},
    "frozenset": lambda items: frozenset(_decode(item) for item in items),
    "dict": lambda pairs: {_decode(k): _decode(v) for k, v in pairs},
    "bytes": bytes.fromhex,
    "complex": lambda parts: complex(float(parts[0]), float(parts[1])),
}


def _decode(value):
    if type(value) in _SCALARS:
        return value
    if type(value) is list:
        return [_decode(item) for item in value]
    if type(value) is dict and len(value) == 1:
        ((tag, payload),) = value.items()
        if tag in _BUILDERS:
            return _BUILDERS[tag](payload)
    raise CandidateError("a value that is not plain data")


if __name__ == "__main__":
    _child_main()
