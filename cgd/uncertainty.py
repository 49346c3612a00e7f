"""`harness analyze RUN`: refinement uncertainty of every model of a run (docs/analysis.md).

For each model (base and every trained label) and each validation problem with teacher annotations
(x, y', c, ŷ), the refined answer ŷ is scored under two prompts, both in the training chat format:
    x     the plain solve prompt (what sft trains on and the probe asked)
    xyc   the refine prompt with the attempt and the critique (what cgd trains on)
Per problem: the mean over ŷ's tokens of the entropy of the next-token distribution (nats) and of
the token's negative log-likelihood. Per model: the mean over problems with a Student-t interval,
and the paired change xyc - x (how much the critique leaves the model less uncertain about ŷ).
Between methods: cgd vs sft, cgd vs base, sft vs base, paired over problems (sign-flip test).

Files under the run dir, each written atomically by a RunDir stage, so a killed analysis resumes:
    analysis/uncertainty/<label>.jsonl      per problem and prompt: tokens, entropy, nll
    analysis/uncertainty.json, .csv         the summary the report reads
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from harness import layout
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text, read_json, read_jsonl, sha256_file
from harness.run import RunDir
from harness.rundata import BASE, method_of

log = logging.getLogger(__name__)

SCHEMA = "uncertainty-v1"
SUMMARY = layout.UNCERTAINTY
SUMMARY_CSV = layout.UNCERTAINTY_CSV
CONDITIONS = {"x": "given x (solve prompt)", "xyc": "given (x, y', c) (refine prompt)"}
MEASURES = {"entropy": "mean token entropy (nats)", "nll": "mean token NLL (nats)"}
# (b, a): the change b - a. Lower is less uncertain.
PAIRS = (("cgd", "sft"), ("cgd", BASE), ("sft", BASE))
CSV_COLUMNS = ["kind", "model", "against", "measure", "condition", "n", "value", "low", "high", "p_value"]


def val_annotations(run: RunDir) -> list[dict]:
    """The annotated validation rows (`harness analyze` annotates an older compare run first)."""
    from cgd.val_annotations import VAL_ANNOTATIONS

    path = run.path(VAL_ANNOTATIONS)
    rows = read_jsonl(path) if path.exists() else []
    rows = [r for r in rows if r.get("refined") and r.get("attempt") is not None and r.get("critique")]
    if not rows:
        raise HarnessError(
            f"{run.root}: no teacher annotations of the validation problems ({VAL_ANNOTATIONS}); "
            "the uncertainty analysis needs (x, y', c, ŷ): run `harness compare` with a method that "
            "uses the teacher (e.g. cgd) and data.n_val > 0"
        )
    return rows


def models(run: RunDir, config: dict) -> list[tuple[str, str]]:
    """(label, model spec): base, then every trained checkpoint (the selected weights, as evaluated)."""
    found = [(BASE, str(config["model"]))] if config.get("model") else []
    train = run.path(layout.TRAIN)
    labels = (
        [p.name for p in train.iterdir() if (p / layout.CHECKPOINT_NAME).is_dir()] if train.is_dir() else []
    )
    order = [str(m) for m in config.get("methods") or []]

    def key(label: str) -> tuple:
        method = method_of(label)
        return (order.index(method) if method in order else len(order), label)

    return found + [(label, str(run.path(layout.checkpoint(label)))) for label in sorted(labels, key=key)]


def chat_pair(backend, user: str, answer: str) -> tuple[list[int], list[int]]:
    """(context ids, ŷ ids) exactly as training tokenises the conversation: the rendered prompt, then
    the assistant turn's tokens without the closing end-of-turn marker (not part of the answer)."""
    tok = backend.tokenizer
    prompt = [{"role": "user", "content": user}]

    def full(content: str) -> list[int]:
        text = tok.apply_chat_template(
            [*prompt, {"role": "assistant", "content": content}], tokenize=False, add_generation_prompt=False
        )
        return backend.encode(text)

    ctx = backend.encode(backend.render(prompt))
    ids, empty = full(answer), full("")
    if ids[: len(ctx)] != ctx or empty[: len(ctx)] != ctx:
        # A template that rewrites earlier turns once an answer follows: score ŷ's own tokens instead.
        return ctx, backend.encode(answer)
    cont, closing = ids[len(ctx) :], empty[len(ctx) :]
    if closing and cont[-len(closing) :] == closing:
        cont = cont[: -len(closing)]
    return ctx, cont


def requests_for(backend, row: dict) -> dict[str, tuple[list[int], list[int]]]:
    from cgd import prompts

    return {
        "x": chat_pair(backend, prompts.solve_request(row["question"]), row["refined"]),
        "xyc": chat_pair(
            backend, prompts.refine_request(row["question"], row["attempt"], row["critique"]), row["refined"]
        ),
    }


def score_model(run: RunDir, label: str, spec: str, rows: list[dict], annotations_hash: str) -> dict:
    from cgd import prompts
    from harness.models import resolve_model

    inputs = {
        "schema": SCHEMA,
        "model": resolve_model(spec).fingerprint,
        "annotations": annotations_hash,
        "prompts": prompts.PROMPTS_VERSION,
    }
    out = layout.uncertainty_scores(label)

    def run_it():
        from harness.backends import open_backend
        from harness.io import atomic_write_jsonl

        # hf always: entropy needs the full next-token distribution, which vLLM's prompt_logprobs
        # (top-k only) and a remote server cannot give.
        with open_backend(spec, "hf", cache=False, progress=False) as backend:
            max_len = getattr(backend.model.config, "max_position_embeddings", 2048)
            keys, requests = [], []
            for row in rows:
                for condition, (ctx, cont) in requests_for(backend, row).items():
                    if cont:
                        keys.append((row["id"], condition, len(ctx) + len(cont) > max_len + 1))
                        requests.append((ctx, cont))
            stats = backend.token_stats(requests)
        records = [
            {
                "id": pid,
                "condition": condition,
                "tokens": len(logps),
                "entropy": float(np.mean(entropies)),
                "nll": float(-np.mean(logps)),
                "context_truncated": truncated,
            }
            for (pid, condition, truncated), (logps, entropies) in zip(keys, stats)
        ]
        atomic_write_jsonl(run.path(out), records)
        return [out], {
            "requests": len(records),
            "context_truncated": sum(r["context_truncated"] for r in records),
        }

    return run.run_stage(f"analysis:uncertainty:{label}", inputs, run_it)


def _per_problem(records: list[dict], measure: str, condition: str) -> dict[str, float]:
    return {r["id"]: r[measure] for r in records if r["condition"] == condition}


def _interval(values: list[float]) -> dict:
    from harness.stats import t_interval

    # Entropies and NLLs are not in [0, 1]: Student's t, whose coverage holds at the 2-32 problems
    # these tables have (a percentile bootstrap covered far less there). One problem: no interval.
    ci = t_interval(values)
    finite = math.isfinite(ci.low)
    return {
        "mean": ci.mean,
        "low": ci.low if finite else None,
        "high": ci.high if finite else None,
        "n": ci.n,
        "method": ci.method,
    }


def _paired(a: dict[str, float], b: dict[str, float]) -> dict | None:
    from harness.stats import compare_items

    cmp = compare_items(a, b)
    r = cmp.result
    if r is None:
        return None
    return {
        "n": r.n,
        "mean_a": r.mean_a,
        "mean_b": r.mean_b,
        "delta": r.delta,
        "low": r.ci_low,
        "high": r.ci_high,
        "p_value": r.p_value,
        "test": r.test,
        "ci_method": r.ci_method,
    }


def summarize(per_label: dict[str, list[dict]], fingerprints: dict[str, str]) -> dict:
    """The summary: per model, per measure and prompt, the mean with its interval and the critique's
    paired effect; then the paired comparisons between methods (a method's seeds averaged per problem)."""
    model_rows = []
    for label, records in per_label.items():
        entry = {
            "label": label,
            "method": method_of(label),
            "fingerprint": fingerprints.get(label),
            "context_truncated": sum(bool(r.get("context_truncated")) for r in records),
        }
        for measure in MEASURES:
            cells = {c: _interval(list(_per_problem(records, measure, c).values())) for c in CONDITIONS}
            cells["critique_effect"] = _paired(
                _per_problem(records, measure, "x"), _per_problem(records, measure, "xyc")
            )
            entry[measure] = cells
        model_rows.append(entry)
    groups: dict[str, list[str]] = {}
    for label in per_label:
        groups.setdefault(method_of(label), []).append(label)
    comparisons = []
    for b, a in PAIRS:
        if a not in groups or b not in groups:
            continue
        for measure in MEASURES:
            for condition in CONDITIONS:
                result = _paired(
                    _group_mean(per_label, groups[a], measure, condition),
                    _group_mean(per_label, groups[b], measure, condition),
                )
                if result:
                    comparisons.append(
                        {"model": b, "against": a, "measure": measure, "condition": condition, **result}
                    )
    n = max((len(_per_problem(r, "nll", "x")) for r in per_label.values()), default=0)
    return {
        "schema": SCHEMA,
        "n_problems": n,
        "conditions": CONDITIONS,
        "measures": MEASURES,
        "models": model_rows,
        "comparisons": comparisons,
    }


def _group_mean(per_label, labels, measure, condition) -> dict[str, float]:
    maps = [_per_problem(per_label[label], measure, condition) for label in labels]
    shared = set.intersection(*(set(m) for m in maps))
    return {pid: float(np.mean([m[pid] for m in maps])) for pid in sorted(shared)}


def to_csv_text(summary: dict) -> str:
    from harness.io import to_csv

    rows = []
    for m in summary["models"]:
        for measure in MEASURES:
            for condition in CONDITIONS:
                c = m[measure][condition]
                rows.append(
                    ["model", m["label"], "", measure, condition, c["n"], c["mean"], c["low"], c["high"], ""]
                )
            e = m[measure]["critique_effect"]
            if e:
                rows.append(
                    [
                        "critique_effect",
                        m["label"],
                        "",
                        measure,
                        "xyc-x",
                        e["n"],
                        e["delta"],
                        e["low"],
                        e["high"],
                        e["p_value"],
                    ]
                )
    for c in summary["comparisons"]:
        rows.append(
            [
                "comparison",
                c["model"],
                c["against"],
                c["measure"],
                c["condition"],
                c["n"],
                c["delta"],
                c["low"],
                c["high"],
                c["p_value"],
            ]
        )
    return to_csv(CSV_COLUMNS, rows)


def summary_lines(summary: dict) -> list[str]:
    """The terminal's view: per model, mean token entropy and NLL of ŷ under each prompt."""
    from harness.stats import interval_text

    lines = [f"refinement uncertainty on {summary['n_problems']} validation problems (nats, 95 % CI)"]
    for m in summary["models"]:
        cells = []
        for measure in MEASURES:
            for condition in CONDITIONS:
                c = m[measure][condition]
                cells.append(f"{measure}|{condition} {interval_text(c['mean'], c['low'], c['high'])}")
        lines.append(f"  {m['label']:<16} " + "  ".join(cells))
    for c in summary["comparisons"]:
        lines.append(
            f"  {c['model']} - {c['against']} {c['measure']}|{c['condition']}: "
            f"{interval_text(c['delta'], c['low'], c['high'], signed=True)} p={c['p_value']:.3g} (n={c['n']})"
        )
    return lines


def analyze(run_dir: str | Path | RunDir, config: dict | None = None) -> dict:
    """Score every model of the run on the annotated validation problems and write the summary."""
    from cgd.val_annotations import VAL_ANNOTATIONS
    from harness.models import resolve_model

    root = run_dir.root if isinstance(run_dir, RunDir) else Path(run_dir)
    if not (root / layout.CONFIG).exists():  # checked before RunDir, which would create the directory
        raise HarnessError(f"{root}: not a compare run directory (no config.json)")
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(root)
    config = config if config is not None else read_json(run.path(layout.CONFIG))
    rows = val_annotations(run)
    annotations_hash = sha256_file(run.path(VAL_ANNOTATIONS))
    found = models(run, config)
    for label, spec in found:
        score_model(run, label, spec, rows, annotations_hash)
    inputs = {label: sha256_file(run.path(layout.uncertainty_scores(label))) for label, _ in found}

    def run_it():
        per_label = {label: read_jsonl(run.path(layout.uncertainty_scores(label))) for label, _ in found}
        fingerprints = {label: resolve_model(spec).fingerprint for label, spec in found}
        summary = summarize(per_label, fingerprints)
        atomic_write_json(run.path(SUMMARY), summary)
        atomic_write_text(run.path(SUMMARY_CSV), to_csv_text(summary))
        return [SUMMARY, SUMMARY_CSV], {"models": len(found), "problems": summary["n_problems"]}

    run.run_stage("analysis:uncertainty", {"schema": SCHEMA, "files": inputs}, run_it)
    return read_json(run.path(SUMMARY))
