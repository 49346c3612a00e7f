"""How the command ends when it is stopped or misused: one line each, never a traceback.

SIGTERM (a scheduler's time limit, `kill`) and Ctrl-C unwind the stack, so open files are cleaned up and
the user reads what stopped and that the same command resumes (finished work is kept: the stages
and the generation cache commit as they go). Progress bars are closed before any such line, so it
starts a line of its own instead of trailing the bar.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys

# What the shell reports for a process the signal ended: 143 for SIGTERM, 130 for SIGINT (Ctrl-C).
HOW = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class Stopped(BaseException):
    """A stop signal arrived in the main process. A BaseException, so that no library's `except
    Exception` swallows it; not a KeyboardInterrupt, which typer turns into a silent exit 130."""

    def __init__(self, signum: int):
        super().__init__(HOW[signum])
        self.how, self.exit_code = HOW[signum], 128 + signum


def catch_stop_signals() -> None:
    main_pid = os.getpid()

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
        if os.getpid() != main_pid:  # a forked worker inherited this handler: end as it would have
            os.kill(os.getpid(), signum)
            return
        raise Stopped(signum)

    for signum in HOW:
        signal.signal(signum, stop)


def stopped_line(how: str) -> str:
    command = shlex.join(["harness", *sys.argv[1:]])
    return f"stopped ({how}): {command}; finished work is kept, run the same command again to resume"


def close_progress_bars() -> None:
    """A live bar leaves the cursor at the end of its line: close it so the next text starts a line."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        bar.close()


class BarSafeHandler(logging.StreamHandler):
    """Log lines above the live progress bars (tqdm.write), never appended to a bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")
        if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
            return super().emit(record)
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)
