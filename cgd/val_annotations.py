"""Teacher annotations of the validation problems: y', c and ŷ for problems/val.jsonl.

The training stages (cgd/pipeline.py) probe and teach the training problems only. The uncertainty
analysis (cgd/uncertainty.py) needs (x, y', c, ŷ) on problems no model trained on, so these
stages run the same probe and the same teacher on the validation split, into files of their own:
    probe/val_attempts.jsonl                      the untrained student's first answers y'
    teach/val_annotations.jsonl (+ .meta.json)    c and ŷ, the same columns as teach/annotations.jsonl
Nothing here is ever training data: no method's dataset reads these files.
With a teacher file the validation problems come from that file (cgd/pipeline.py's problems_config),
so their annotations are the file's own rows.
"""

from __future__ import annotations

from pathlib import Path

from cgd import methods, prompts
from cgd.pipeline import VAL_PROBLEMS, BuildConfig
from cgd.teachers.base import meta_path
from harness.io import atomic_write_jsonl, read_jsonl, sha256_file
from harness.run import RunDir

VAL_ATTEMPTS = "probe/val_attempts.jsonl"
VAL_ANNOTATIONS = "teach/val_annotations.jsonl"


def outputs() -> list[str]:
    return [VAL_ANNOTATIONS, str(meta_path(Path(VAL_ANNOTATIONS)))]


def wanted(cfg: BuildConfig) -> bool:
    """Only a run whose methods call the teacher has one to ask."""
    return any(methods.uses_teacher(m) for m in cfg.methods)


def annotate_val(run: RunDir, cfg: BuildConfig) -> dict[str, dict]:
    """Run the validation probe and teach stages (resumable); returns their manifest records."""
    if cfg.teacher_file:
        return {"teach:val": _from_teacher_file(run, cfg)}
    return {"probe:val": _probe(run, cfg), "teach:val": _teach(run, cfg)}


def _probe(run: RunDir, cfg: BuildConfig) -> dict:
    from cgd.probe import probe
    from harness.backends import open_backend
    from harness.models import resolve_model

    inputs = {
        "model": resolve_model(cfg.model).fingerprint,
        "backend": cfg.backend,
        "problems": sha256_file(run.path(VAL_PROBLEMS)),
        "max_new_tokens": cfg.problems.probe_max_new_tokens,
        "prompts": prompts.PROMPTS_VERSION,
    }

    def run_it():
        with open_backend(cfg.model, backend=cfg.backend, cache=True) as student:
            attempts = probe(read_jsonl(run.path(VAL_PROBLEMS)), student, cfg.problems.probe_max_new_tokens)
        atomic_write_jsonl(run.path(VAL_ATTEMPTS), attempts)
        return [VAL_ATTEMPTS], {"attempts": len(attempts)}

    return run.run_stage("probe:val", inputs, run_it)


def _teach(run: RunDir, cfg: BuildConfig) -> dict:
    from cgd.teachers import annotate, make_teacher, save_annotations, teacher_identity

    inputs = {
        "teacher": teacher_identity(cfg.teacher, cfg.teacher_options),
        "problems": sha256_file(run.path(VAL_PROBLEMS)),
        "attempts": sha256_file(run.path(VAL_ATTEMPTS)),
        "prompts": prompts.PROMPTS_VERSION,
    }

    def run_it():
        teacher = make_teacher(cfg.teacher, **cfg.teacher_options)
        attempts = {a["id"]: a["attempt"] for a in read_jsonl(run.path(VAL_ATTEMPTS))}
        items = [{**p, "attempt": attempts[p["id"]]} for p in read_jsonl(run.path(VAL_PROBLEMS))]
        meta = save_annotations(run.path(VAL_ANNOTATIONS), annotate(teacher, items), teacher.describe())
        return outputs(), meta["stats"]

    return run.run_stage("teach:val", inputs, run_it)


def _from_teacher_file(run: RunDir, cfg: BuildConfig) -> dict:
    from cgd.teachers import load_annotations, save_annotations

    inputs = {"teacher_file": sha256_file(cfg.teacher_file), "problems": sha256_file(run.path(VAL_PROBLEMS))}

    def run_it():
        rows, meta = load_annotations(cfg.teacher_file)
        chosen = {p["id"] for p in read_jsonl(run.path(VAL_PROBLEMS))}
        description = {k: v for k, v in meta.items() if k not in ("schema", "prompts_version", "stats")}
        description["source_file"] = str(cfg.teacher_file)
        saved = save_annotations(
            run.path(VAL_ANNOTATIONS), [r for r in rows if r["id"] in chosen], description
        )
        return outputs(), saved["stats"]

    return run.run_stage("teach:val", inputs, run_it)
