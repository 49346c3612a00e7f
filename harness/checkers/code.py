"""Code checker (HumanEval): turn a model's answer into a program, then earn a verdict in a sandbox.

Extraction rules (`extract_code`), in order (reasoning is already cut off: callers pass the
answer part, `harness.checkers.reasoning.split_answer`, so a draft in the thinking is never run):
1. Among fenced blocks tagged python/py (or untagged), the last one that defines
   `def <entry_point>(` wins; else the longest one. Without such blocks: unfenced text that
   defines the function gives its code (from a line that starts code, trailing prose cut);
   anything else is taken as it is.
2. A code piece that defines the entry point is appended after the prompt, so the prompt's
   imports and helpers stay available and the new definition replaces the stub.
   Anything else is a function body: it is indented under the prompt's signature.

Verdicts: `passed`, `failed` (the program ran and did not earn a pass), `timeout`, and `error`
(the sandbox itself could not run: an infrastructure problem, never the model's fault).
`check_humaneval` runs the test in a separate judge process (see harness/checkers/sandbox.py);
`run_program` trusts the program's own in-process checks and should only score trusted code.
"""

from __future__ import annotations

import re
import signal
import textwrap
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.checkers import sandbox

PASSED = "passed"
FAILED = "failed"
TIMEOUT = "timeout"
ERROR = "error"
STATUSES = (PASSED, FAILED, TIMEOUT, ERROR)

_DETAIL_MAX_CHARS = 400
# A traceback entry in code the verdict is about (not the sandbox's own frames), and its line.
_SOURCE_LINE = re.compile(r'File "<(?:program|prompt|test)>", line \d+.*\n(.*\S.*)')
_PYTHON_TAGS = {"", "python", "python3", "py", "py3"}
_FENCE = re.compile(
    r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE
)
_CODE_START = re.compile(r"^(?:import |from |def |async def |class |@)", re.MULTILINE)
# Unfenced code is searched for by trial compilation, within these bounds.
_MAX_CODE_STARTS = 5
_MAX_TRIMMED_LINES = 200


@dataclass(frozen=True)
class CodeVerdict:
    passed: bool
    status: str
    detail: str = ""


@dataclass(frozen=True)
class HumanEvalSample:
    """One `check_humaneval` job for `run_many`."""

    prompt: str
    program: str
    test: str
    entry_point: str


# ---------------------------------------------------------------- extraction


def extract_code(response: str, prompt: str, entry_point: str) -> str:
    """The full program to run (prompt + the model's code), without the tests."""
    text = response.replace("\r\n", "\n")
    code = _pick_code(text, entry_point)
    if _defines(code, entry_point):
        return prompt.rstrip("\n") + "\n\n\n" + textwrap.dedent(code).strip("\n") + "\n"
    return _with_body(prompt, code)


def _defines(code: str, entry_point: str) -> bool:
    pattern = rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\("
    return re.search(pattern, textwrap.dedent(code), re.MULTILINE) is not None


def _pick_code(text: str, entry_point: str) -> str:
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _PYTHON_TAGS]
    defining = [block for block in blocks if _defines(block, entry_point)]
    if defining:
        return defining[-1]
    if blocks:
        return max(blocks, key=len)
    if _defines(text, entry_point):
        return _code_from_prose(text, entry_point)
    return text


def _code_from_prose(text: str, entry_point: str) -> str:
    """Unfenced prose around a full function: from a line that starts code, minus trailing prose.

    Prose can start like code ("from what I see, ..."), so later starts are tried too.
    """
    starts = [match.start() for match in _CODE_START.finditer(text)][:_MAX_CODE_STARTS]
    for start in starts:
        lines = text[start:].split("\n")
        for drop in range(min(len(lines) - 1, _MAX_TRIMMED_LINES) + 1):
            candidate = "\n".join(lines[: len(lines) - drop])
            if _defines(candidate, entry_point) and _compiles(candidate):
                return candidate
    return text


def _with_body(prompt: str, body: str) -> str:
    head = prompt if prompt.endswith("\n") else prompt + "\n"
    indent = _body_indent(prompt)
    candidates = [textwrap.indent(textwrap.dedent(body), indent)]
    lines = body.split("\n")
    # Chat front ends often strip the first line's indentation and keep the rest.
    rest_indent = _min_indent(lines[1:])
    if lines and not lines[0].startswith((" ", "\t")) and rest_indent:
        fixed = "\n".join([" " * rest_indent + lines[0], *lines[1:]])
        candidates.append(textwrap.indent(textwrap.dedent(fixed), indent))
    candidates.append(body)  # already indented for the prompt, as a base model continues it
    for candidate in candidates:
        if _compiles(head + candidate):
            return head + candidate
    return head + candidates[0]


def _body_indent(prompt: str) -> str:
    """The indentation of the prompt's last line: inside the stub's docstring, i.e. the body."""
    for line in reversed(prompt.split("\n")):
        if line.strip():
            indent = line[: len(line) - len(line.lstrip())]
            return indent or "    "
    return "    "


def _min_indent(lines: list[str]) -> int:
    widths = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    return min(widths, default=0)


def _compiles(source: str) -> bool:
    # Compiling never runs the code; it also catches `return` outside a function, which a
    # mere parse would accept.
    try:
        compile(source, "<candidate>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False


# ---------------------------------------------------------------- verdicts


def run_program(program: str, timeout_s: float = 10.0, memory_mb: int = 1024) -> CodeVerdict:
    """Run a whole program (with its own checks) in the sandbox; it passes if it runs to its end.

    The program's checks run in the same process as its code, so this trusts the program not to
    cheat them (an always-equal object, frame tricks). Score model output with check_humaneval.
    """
    return _guarded(lambda: sandbox.run_script(program, _limits(timeout_s, memory_mb)))


def check_humaneval(
    prompt: str,
    completion_program: str,
    test: str,
    entry_point: str,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> CodeVerdict:
    """Run HumanEval's `test` + `check(entry_point)` against the program (`extract_code` output).

    The judge process runs the trusted prompt and test; the candidate process runs the program
    and answers each call with plain data. A pass needs the judge's `check` to return.
    """
    limits = _limits(timeout_s, memory_mb)
    return _guarded(lambda: sandbox.run_judged(prompt, test, entry_point, completion_program, limits))


def run_many(
    programs: Sequence[str | HumanEvalSample],
    timeout_s: float = 10.0,
    workers: int = 2,
    memory_mb: int = 1024,
) -> list[CodeVerdict]:
    """Verdicts for many programs (strings: run_program) or HumanEval samples, in input order."""

    def one(item: str | HumanEvalSample) -> CodeVerdict:
        if isinstance(item, HumanEvalSample):
            return check_humaneval(
                item.prompt, item.program, item.test, item.entry_point, timeout_s, memory_mb
            )
        return run_program(item, timeout_s, memory_mb)

    # Each sample is its own process; threads only wait on them.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, programs))


def _limits(timeout_s: float, memory_mb: int) -> sandbox.Limits:
    return sandbox.Limits(timeout_s=timeout_s, memory_mb=memory_mb)


def _guarded(run) -> CodeVerdict:
    try:
        result = run()
    except (sandbox.SandboxError, OSError) as exc:  # the harness side: no pipes, no disk, ...
        return CodeVerdict(False, ERROR, _short(f"the sandbox could not run: {exc}"))
    return _verdict(result)


def _verdict(result: sandbox.SandboxResult) -> CodeVerdict:
    main = result.main
    note = _isolation_note(main.layers)
    if main.earned and main.returncode == 0:
        return CodeVerdict(True, PASSED, note)
    cpu_limit = main.returncode == -signal.SIGXCPU
    if result.timed_out or cpu_limit:
        limit = "CPU time limit" if cpu_limit and not result.timed_out else "time limit"
        detail = _short(f"stopped at the {limit}", _context(result), note)
        return CodeVerdict(False, TIMEOUT, detail)
    if not main.layers:
        detail = _short("the sandbox did not start", _error_summary(main.stderr))
        return CodeVerdict(False, ERROR, detail)
    return CodeVerdict(False, FAILED, _short(_failure(main), _context(result), note))


def _failure(outcome: sandbox.ProcessOutcome) -> str:
    code = outcome.returncode
    if code is not None and code < 0:
        return f"killed by {_signal_name(-code)}"
    if code == 0:
        return "exited with status 0 before finishing"
    return _error_summary(outcome.stderr) or f"exit status {code}"


def _context(result: sandbox.SandboxResult) -> str:
    parts = []
    candidate = result.candidate
    if candidate is not None:
        if candidate.returncode not in (None, 0, -signal.SIGKILL):  # -9: our kill at the end
            parts.append(f"candidate: {_failure(candidate)}")
        if candidate.stdout.strip():
            parts.append(f"candidate stdout: {candidate.stdout.strip()[-120:]}")
    if result.main.stdout.strip():
        parts.append(f"stdout: {result.main.stdout.strip()[-120:]}")
    return " | ".join(parts)


def _error_summary(text: str) -> str:
    """The error line of a traceback, after the last line of the program or test it points at."""
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if not lines:
        return ""
    error = lines[-1].replace("__main__.", "")  # the sandbox's own exceptions
    sources = _SOURCE_LINE.findall(text)
    return f"{sources[-1].strip()} / {error}" if sources else error


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _isolation_note(layers: dict) -> str:
    missing = sandbox.missing_isolation(layers) if layers else []
    return f"[not isolated: {', '.join(missing)}]" if missing else ""


def _short(*parts: str) -> str:
    text = " | ".join(part for part in parts if part)
    return text if len(text) <= _DETAIL_MAX_CHARS else text[: _DETAIL_MAX_CHARS - 3] + "..."
