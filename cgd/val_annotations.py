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

from cgd import methods
from cgd.pipeline import VAL, VAL_PROBLEMS, BuildConfig, probe_stage, teach_stage
from harness.io import read_jsonl, sha256_file
from harness.run import RunDir

VAL_ANNOTATIONS = VAL.annotations


def wanted(cfg: BuildConfig) -> bool:
    """Only a run whose methods call the teacher has one to ask."""
    return any(methods.uses_teacher(m) for m in cfg.methods)


def annotate_val(run: RunDir, cfg: BuildConfig) -> dict[str, dict]:
    """Run the validation probe and teach stages (resumable); returns their manifest records."""
    if cfg.teacher_file:
        return {"teach:val": _from_teacher_file(run, cfg)}
    return {"probe:val": probe_stage(run, cfg, VAL), "teach:val": teach_stage(run, cfg, VAL)}


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
        return VAL.annotation_outputs(), saved["stats"]

    return run.run_stage("teach:val", inputs, run_it)
