"""Per-item agreement of one run's evaluation with the same models scored by another backend.

    python scripts/backend_agreement.py RUN_DIR [--backend hf] [-o OUT_DIR]

RUN_DIR is a finished `harness compare` run (say, with backend=vllm). Its base model and every trained
checkpoint are evaluated again with --backend under the run's own eval settings, into OUT_DIR (default:
RUN_DIR-<backend>), and each benchmark's items are compared one by one: how many have the same
response text and how many the same verdict (per-item metrics). Prints a table and writes
OUT_DIR/agreement.json. Different kernels round differently, so texts need not all agree (issue 28.2);
the counts say how many differ. Exit 2 on a directory that is not a finished run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import layout  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.io import atomic_write_json, read_json, read_jsonl  # noqa: E402
from harness_app.run_config import from_record  # noqa: E402


def models_of(run: Path, config) -> list[tuple[str, str]]:
    """(label, model) for the base model and each variant trained so far, as compare evaluates them."""
    found = [("base", config.model)]
    found += [
        (label, str(run / layout.checkpoint(label)))
        for label, _, _ in config.labels()
        if (run / layout.train_summary(label)).is_file()
    ]
    return found


def evaluate_again(models: list[tuple[str, str]], config, backend: str, out: Path) -> None:
    from harness.backends import open_backend
    from harness.evaluate import evaluate_model

    for label, model in models:
        if (out / layout.results(label)).is_file():  # resumable: a model already scored is kept
            continue
        with open_backend(model, backend) as engine:
            info = {
                "name": model if label == "base" else label,
                "fingerprint": engine.fingerprint,
                "backend": backend,
            }
            evaluate_model(engine, info, config.eval, out / layout.EVAL, label)


def compare_items(mine: list[dict], theirs: list[dict]) -> dict:
    by_id = {row["doc_id"]: row for row in theirs}
    pairs = [(row, by_id[row["doc_id"]]) for row in mine if row["doc_id"] in by_id]
    return {
        "items": len(pairs),
        "same_text": sum(a.get("response") == b.get("response") for a, b in pairs),
        "same_verdict": sum(a.get("metrics") == b.get("metrics") for a, b in pairs),
    }


def agreement(run: Path, out: Path, models: list[tuple[str, str]], tasks: list[str]) -> dict:
    """Counts summed over the models; `models` are those the run has evaluated too."""
    table: dict[str, dict] = {}
    for task in tasks:
        totals = {"items": 0, "same_text": 0, "same_verdict": 0}
        for label, _ in models:
            counts = compare_items(
                read_jsonl(run / layout.samples(label, task)), read_jsonl(out / layout.samples(label, task))
            )
            for key in totals:
                totals[key] += counts[key]
        table[task] = totals
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--backend", default="hf")
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    try:
        if not (args.run / layout.CONFIG).is_file():
            raise HarnessError(f"{args.run} is not a run directory (no {layout.CONFIG})")
        config = from_record(read_json(args.run / layout.CONFIG))
        if config.backend == args.backend:
            raise HarnessError(
                f"{args.run} was evaluated with {args.backend} already: pick the other backend"
            )
        out = args.out or args.run.with_name(f"{args.run.name}-{args.backend}")
        trained = models_of(args.run, config)
        # The other backend can score a checkpoint while the run still evaluates (a run in progress).
        evaluate_again(trained, config, args.backend, out)
        models = [(label, m) for label, m in trained if (args.run / layout.results(label)).is_file()]
        if not models:
            raise HarnessError(f"{args.run}: no model evaluated yet; run the compare first")
        table = agreement(args.run, out, models, list(config.eval.task_order()))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {
        "run": str(args.run),
        "backends": [config.backend, args.backend],
        "models": len(models),
        "tasks": table,
    }
    atomic_write_json(out / "agreement.json", report)
    print(f"{config.backend} vs {args.backend} on {len(models)} models ({', '.join(m for m, _ in models)})")
    if len(models) < 1 + len(config.labels()):
        print(
            f"not compared yet (the run has not evaluated them): {len(config.labels()) + 1 - len(models)} models"
        )
    print("| benchmark | items | same text | same verdict |\n| --- | ---: | ---: | ---: |")
    for task, t in table.items():
        print(f"| {task} | {t['items']} | {t['same_text']} | {t['same_verdict']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
