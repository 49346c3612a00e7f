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
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )


def _register() -> None:
    from cgd_harness.cli import analyze, compare, config, data, gate, plan, report, setup, train
    from cgd_harness.cli import eval as eval_cmd

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
    try:
        # Without standalone mode click *returns* a command's exit code instead of exiting with it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except HarnessError as exc:
        if os.environ.get("HARNESS_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # e.g. a library writing straight into a full or read-only directory
        if os.environ.get("HARNESS_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: cannot complete: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("HARNESS_DEBUG"):
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        sys.exit(3)
