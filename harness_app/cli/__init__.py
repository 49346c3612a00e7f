"""The `harness` command. Each command lives in its own small module; this file only wires them."""

from __future__ import annotations

import logging
import os
import sys

import typer

from harness.errors import HarnessError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark harness for SFT / CFT / Critique-Guided Distillation.",
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs.")) -> None:
    if debug:
        os.environ["HARNESS_DEBUG"] = "1"
    from harness_app.cli.stops import BarSafeHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[BarSafeHandler()],
    )


def _register() -> None:
    from harness_app.cli import analyze, compare, config, data, gate, plan, report, setup, train
    from harness_app.cli import eval as eval_cmd

    app.command("eval")(eval_cmd.eval_command)
    app.command("merge")(eval_cmd.merge_command)
    app.command("compare")(compare.compare_command)
    data_app = typer.Typer(
        help="Training data: probe the student, ask the teacher, build per-method datasets.",
        no_args_is_help=True,
    )
    data_app.command("build")(data.data_build)
    app.add_typer(data_app, name="data")
    app.command("train")(train.train)
    app.command("report")(report.report)
    app.command("analyze")(analyze.analyze_command)
    app.command("gate")(gate.gate)
    app.command("plan")(plan.plan_command)
    app.command("config")(config.config_command)
    app.command("setup")(setup.setup_command)


_register()


def main() -> None:
    from harness_app.cli.stops import Stopped, catch_stop_signals, close_progress_bars, stopped_line

    catch_stop_signals()
    try:
        # Without standalone mode click *returns* a command's exit code instead of exiting with it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Stopped as exc:
        close_progress_bars()
        typer.echo(stopped_line(exc.how), err=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C before the handler was installed, or EOF at a prompt
        close_progress_bars()
        typer.echo(stopped_line("Ctrl-C"), err=True)
        sys.exit(130)
    except Exception as exc:
        close_progress_bars()
        if _is_usage_error(exc):  # an unknown option, a value out of range: click names the option
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("HARNESS_DEBUG"):
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, HarnessError) else 2 if isinstance(exc, OSError) else 3)


def _is_usage_error(exc: Exception) -> bool:
    """Typer raises its vendored click's exceptions (typer._click), older versions click's own."""
    import click

    return isinstance(exc, click.exceptions.ClickException) or (
        isinstance(exc, typer.TyperException) and hasattr(exc, "show") and hasattr(exc, "exit_code")
    )


def _one_line(exc: Exception) -> str:
    if isinstance(exc, HarnessError):
        return str(exc)
    if isinstance(exc, OSError):  # e.g. a library writing straight into a full or read-only directory
        where = f"{exc.filename}: " if exc.filename else ""
        return f"cannot complete: {where}{exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc} (re-run with --debug for the traceback)"
