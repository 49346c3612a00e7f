"""`harness gate`: check a run against a recorded baseline and in-run requirements, or record one."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.defaults import ALPHA, GATE_MAX_DROP, MULTIPLICITY
from harness.errors import HarnessError

RECORD = "record"


def gate(
    target: str = typer.Argument(
        ...,
        metavar="RUN_DIR|record",
        help="The run directory to check, or the word 'record' followed by the run to record.",
    ),
    record_run: Path | None = typer.Argument(
        None, metavar="[RUN_DIR]", show_default=False, help="With 'record': the run directory to record."
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Baseline JSON written by 'harness gate record'."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="With 'record': where to write the baseline JSON."
    ),
    max_drop: float = typer.Option(
        GATE_MAX_DROP, "--max-drop", help="Points a score may drop before the drop can fail the gate."
    ),
    alpha: float = typer.Option(
        ALPHA, "--alpha", help="Significance level of the paired test on matched items."
    ),
    require: list[str] | None = typer.Option(
        None,
        "--require",
        "-r",
        metavar="EXPR",
        help="In-run requirement, repeatable: 'cgd.math500 >= base.math500', 'cgd.ifeval >= base.ifeval - 2'.",
    ),
    non_inferior: list[str] | None = typer.Option(
        None,
        "--non-inferior",
        metavar="EXPR",
        help="Non-inferiority by interval, repeatable: 'cgd.ifeval >= base.ifeval - 2' holds when the lower end "
        "of the (1 - alpha) interval of the paired difference is above -2 points.",
    ),
    multiplicity: str = typer.Option(
        MULTIPLICITY,
        "--multiplicity",
        help="Adjustment of the baseline checks' p-values: holm, bh or none.",
    ),
) -> None:
    """Regression gate for CI: check a run, or record a baseline.

    \b
    Check:  harness gate RUN_DIR --baseline FILE [--max-drop 2.0]
                [--alpha 0.05] [--multiplicity holm] [--require EXPR ...]
                [--non-inferior EXPR ...]
    Record: harness gate record RUN_DIR -o reports/baselines/NAME.json

    A benchmark fails when its score dropped by more than --max-drop
    points AND the paired test on the same items (McNemar, or a sign-flip
    test for continuous scores) gives p < --alpha, the p-values of all
    baseline checks adjusted together (--multiplicity). A label or task
    of the baseline that is missing from the run also fails.

    --non-inferior 'A.TASK >= B.TASK - M' holds when the lower end of the
    interval of the paired difference A - B is above -M points.

    --require compares scores (in percent) inside the run:
    LABEL.TASK[.METRIC] OP LABEL.TASK[.METRIC] [+|- points], or a number;
    OP is one of >= > <= < ==. A method run with several seeds can be
    named alone (its seeds are averaged) or as METHOD@seedK.

    Exit codes: 0 pass, 1 regression, 2 unusable input (malformed
    baseline, another benchmark version or item set, unknown label/task).
    """
    # Here, not at the top: the gate loads the statistics stack, which `harness --help` must not.
    from harness_app.gate import check_gate, record_baseline

    if target == RECORD:
        if record_run is None or output is None:
            raise HarnessError("usage: harness gate record RUN_DIR -o FILE")
        recorded = record_baseline(record_run, output)
        typer.echo(f"baseline: {len(recorded['labels'])} labels from {record_run} written to {output}")
        return
    if record_run is not None:
        raise HarnessError(
            f"unexpected argument {str(record_run)!r}; to record: harness gate record RUN_DIR -o FILE"
        )
    result = check_gate(
        Path(target),
        baseline,
        max_drop=max_drop,
        alpha=alpha,
        requires=require or (),
        multiplicity=multiplicity,
        non_inferior=non_inferior or (),
    )
    typer.echo(result.table(), nl=False)
    raise typer.Exit(result.exit_code)
