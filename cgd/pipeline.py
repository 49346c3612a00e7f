"""The data-build stages: problems → probe → teach → one training dataset per method.

Each stage is a RunDir stage: it records the hash of what it read and of what it wrote, and is
skipped on a re-run when neither changed; it reads another stage's output only after checking that
output against its record (`RunDir.input_hash`): no stage builds on an edited or truncated file. Files in the run directory:
    problems/train.jsonl, problems/val.jsonl      the selected problems (val: held-out, for checkpoints)
    probe/attempts.jsonl                          the student's first answers y'
    teach/annotations.jsonl (+ .meta.json)        critique c and refined answer ŷ per problem
    data/<method>.jsonl (+ .meta.json)            TRL conversational prompt-completion examples
With a teacher file (a critique dataset someone already made) the problems come from that file and
the probe and teach stages read nothing else.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from cgd import methods, prompts
from cgd.problems import ProblemsConfig, load_problems
from cgd.teachers.base import meta_path
from harness import layout
from harness.backends.vllm import VllmOptions
from harness.defaults import DEFAULT_MODEL
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl, sha256_file
from harness.run import RunDir

TRAIN_PROBLEMS, VAL_PROBLEMS = layout.TRAIN_PROBLEMS, layout.VAL_PROBLEMS
ATTEMPTS, ANNOTATIONS = layout.ATTEMPTS, layout.ANNOTATIONS
# What a dataset's metadata repeats of its teacher (the report's leakage table reads it there).
DATASET_TEACHER_KEYS = (
    "teacher",
    "fingerprint",
    "sampling",
    "reveal",
    "prompts_version",
    "source_file",
    "failures",
)
# A brought critique dataset already uses our column names.
IDENTITY_COLUMNS = {k: k for k in ("id", "question", "solution", "answer", "subject", "level")}


@dataclass(frozen=True)
class Split:
    """The files one split of the problems flows through: the probe's attempts, then the teacher's
    annotations. The training split feeds the datasets; the validation one only the analysis."""

    name: str  # "" for the training split; its stages are then plain "probe" and "teach"
    problems: str
    attempts: str
    annotations: str

    def stage(self, kind: str) -> str:
        return f"{kind}:{self.name}" if self.name else kind

    def annotation_outputs(self) -> list[str]:
        return [self.annotations, str(meta_path(Path(self.annotations)))]


TRAIN = Split("", TRAIN_PROBLEMS, ATTEMPTS, ANNOTATIONS)
VAL = Split("val", VAL_PROBLEMS, layout.VAL_ATTEMPTS, layout.VAL_ANNOTATIONS)


@dataclass
class BuildConfig:
    methods: list[str]
    model: str = DEFAULT_MODEL  # the student that is probed
    backend: str = "hf"
    # The engine of backend vllm: the run's eval.vllm section, so probe and evaluation open it alike.
    vllm: VllmOptions = field(default_factory=VllmOptions)
    teacher: str = "reference"
    teacher_options: dict = field(default_factory=dict)
    teacher_file: str | None = None  # an existing critique dataset: skips probe and teach
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)
    seed: int = 0  # pairs critiques for cgd-shuffled, and subsamples for right_ratio
    # Share of kept items whose attempt the critique judged right (None keeps all); see select_right_ratio.
    right_ratio: float | None = None


def build(run_dir: str | Path | RunDir, cfg: BuildConfig) -> dict[str, dict]:
    """Run every stage the methods need; returns each stage's manifest record (info has wall_seconds)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    methods.check_methods(cfg.methods)
    check_right_ratio(cfg.right_ratio)
    records = {"problems": problems_stage(run, cfg)}
    # The ratio selects problems by the critique's verdict, for every method alike (sft included).
    if cfg.right_ratio is not None or any(methods.uses_teacher(m) for m in cfg.methods):
        if cfg.teacher_file:
            records["teach"] = teacher_file_stage(run, cfg)
        else:
            records["probe"] = probe_stage(run, cfg)
            records["teach"] = teach_stage(run, cfg)
    for name in cfg.methods:
        records[f"build:{name}"] = method_stage(run, cfg, name)
    return records


def problems_config(cfg: BuildConfig) -> ProblemsConfig:
    if not cfg.teacher_file:
        return cfg.problems
    return dataclasses.replace(cfg.problems, source=str(cfg.teacher_file), columns=dict(IDENTITY_COLUMNS))


def source_identity(pcfg: ProblemsConfig) -> str:
    """A local source's bytes; a Hub dataset can only be named."""
    if pcfg.source == "math_train":
        from harness.data import MATH_TRAIN, local_path
        from harness.paths import data_dir

        return sha256_file(local_path(MATH_TRAIN.file)) if data_dir() else "hub:" + MATH_TRAIN.hub[0]
    path = Path(pcfg.source).expanduser()
    return sha256_file(path) if path.is_file() else pcfg.source


def problems_stage(run: RunDir, cfg: BuildConfig) -> dict:
    pcfg = problems_config(cfg)

    def run_it():
        train, val = load_problems(pcfg)
        atomic_write_jsonl(run.path(TRAIN_PROBLEMS), train)
        atomic_write_jsonl(run.path(VAL_PROBLEMS), val)
        return [TRAIN_PROBLEMS, VAL_PROBLEMS], {"train": len(train), "val": len(val)}

    return run.run_stage("problems", {"config": pcfg.as_dict(), "source": source_identity(pcfg)}, run_it)


def probe_stage(run: RunDir, cfg: BuildConfig, split: Split = TRAIN) -> dict:
    from cgd.probe import probe
    from harness.backends import open_backend
    from harness.models import resolve_model

    inputs = {
        "model": resolve_model(cfg.model).fingerprint,
        "backend": cfg.backend,
        "problems": run.input_hash(split.problems),
        "max_new_tokens": cfg.problems.probe_max_new_tokens,
        "prompts": prompts.PROMPTS_VERSION,
    }
    options = student_options(cfg)
    if options:  # only where they apply, so hf runs keep their stage keys
        inputs["engine"] = options

    def run_it():
        with open_backend(cfg.model, backend=cfg.backend, cache=True, **options) as student:
            attempts = probe(read_jsonl(run.path(split.problems)), student, cfg.problems.probe_max_new_tokens)
        atomic_write_jsonl(run.path(split.attempts), attempts)
        return [split.attempts], {
            "attempts": len(attempts),
            "student": student.fingerprint,
            "completion_tokens": sum(a["completion_tokens"] for a in attempts),
            "truncated": sum(a["finish_reason"] == "length" for a in attempts),
        }

    return run.run_stage(split.stage("probe"), inputs, run_it)


def student_options(cfg: BuildConfig) -> dict:
    """The probed student's engine options: eval.vllm's, as evaluation passes them (EvalConfig.backend_options)."""
    return asdict(cfg.vllm) if cfg.backend == "vllm" else {}


def teach_stage(run: RunDir, cfg: BuildConfig, split: Split = TRAIN) -> dict:
    from cgd.teachers import annotate, make_teacher, max_dropped_fraction, save_annotations, teacher_identity

    inputs = {
        "teacher": teacher_identity(cfg.teacher, cfg.teacher_options),
        "problems": run.input_hash(split.problems),
        "attempts": run.input_hash(split.attempts),
        "prompts": prompts.PROMPTS_VERSION,
    }

    def run_it():
        teacher = make_teacher(cfg.teacher, **cfg.teacher_options)
        attempts = {a["id"]: a["attempt"] for a in read_jsonl(run.path(split.attempts))}
        items = [{**p, "attempt": attempts[p["id"]]} for p in read_jsonl(run.path(split.problems))]
        rows = annotate(teacher, items, max_dropped_fraction(cfg.teacher_options))
        meta = save_annotations(run.path(split.annotations), rows, teacher.describe())
        # Problems without usable teacher text (teacher.max_dropped_fraction): per cause in stats.failures.
        return split.annotation_outputs(), {**meta["stats"], "dropped": len(items) - len(rows)}

    return run.run_stage(split.stage("teach"), inputs, run_it)


def teacher_file_stage(run: RunDir, cfg: BuildConfig) -> dict:
    from cgd.teachers import load_annotations, save_annotations

    inputs = {
        "teacher_file": sha256_file(cfg.teacher_file),
        "problems": run.input_hash(TRAIN_PROBLEMS),
    }

    def run_it():
        rows, meta = load_annotations(cfg.teacher_file)
        chosen = {p["id"] for p in read_jsonl(run.path(TRAIN_PROBLEMS))}
        description = {k: v for k, v in meta.items() if k not in ("schema", "prompts_version", "stats")}
        description["source_file"] = str(cfg.teacher_file)
        # The file's own prompts version says how its critiques were asked for; keep it beside ours.
        description["source_prompts_version"] = meta.get("prompts_version")
        saved = save_annotations(run.path(ANNOTATIONS), [r for r in rows if r["id"] in chosen], description)
        return TRAIN.annotation_outputs(), saved["stats"]

    return run.run_stage("teach", inputs, run_it)


def method_stage(run: RunDir, cfg: BuildConfig, name: str) -> dict:
    uses_teacher = methods.uses_teacher(name)
    # Annotated rows carry every problem column, so sft reads them too when the ratio selects problems.
    source = ANNOTATIONS if uses_teacher or cfg.right_ratio is not None else TRAIN_PROBLEMS
    out = layout.dataset(name)
    inputs = {
        "method": name,
        "rows": run.input_hash(source),
        "seed": cfg.seed,
        "right_ratio": cfg.right_ratio,
        "prompts": prompts.PROMPTS_VERSION,
    }

    def run_it():
        rows = read_jsonl(run.path(source))
        selection = None
        if cfg.right_ratio is not None:
            rows, selection = select_right_ratio(rows, cfg.right_ratio, cfg.seed)
        examples = methods.build_examples(name, rows, cfg.seed)
        atomic_write_jsonl(run.path(out), examples)
        teacher = read_json(run.path(meta_path(Path(ANNOTATIONS)))) if uses_teacher else None
        meta = {
            "method": name,
            "rows": len(examples),
            "seed": cfg.seed,
            "prompts_version": prompts.PROMPTS_VERSION,
            "dataset_hash": sha256_file(run.path(out)),
            "teacher": {k: teacher.get(k) for k in DATASET_TEACHER_KEYS} if teacher else None,
            "teacher_tokens": method_teacher_tokens(name, rows),
            "right_ratio": selection,
            "leakage": dataset_leakage(rows, teacher, selection) if teacher else None,
        }
        atomic_write_json(run.path(meta_path(Path(out))), meta)
        return [out, str(meta_path(Path(out)))], {"rows": len(examples)}

    return run.run_stage(f"build:{name}", inputs, run_it)


def method_teacher_tokens(name: str, rows: list[dict]) -> int:
    """Tokens a model teacher generated for the columns this method trains on (0 for the reference teacher)."""
    columns = [c for c in ("critique", "refined") if c in methods.NEEDS[name]]
    return sum(r.get(f"{c}_tokens") or 0 for r in rows for c in columns)


def dataset_leakage(rows: list[dict], teacher_meta: dict, selection: dict | None) -> dict:
    """The leakage statistics of the rows a dataset was built from (cgd/teachers/leakage.py).

    Without a selection those are the teach stage's rows, already measured there.
    """
    recorded = (teacher_meta.get("stats") or {}).get("leakage")
    if selection is None and recorded is not None:
        return recorded
    from cgd.teachers.leakage import leakage_stats

    return leakage_stats(rows)


def check_right_ratio(ratio: float | None) -> None:
    if ratio is not None and (isinstance(ratio, bool) or not 0 <= ratio <= 1):
        raise HarnessError(f"data.right_ratio must be null or a share between 0 and 1, got {ratio!r}")


def row_verdict(row: dict) -> bool | None:
    # A brought critique file may lack the parsed column; its critique text has the verdict.
    return row["verdict"] if "verdict" in row else prompts.parse_verdict(row["critique"])


def select_right_ratio(rows: list[dict], ratio: float, seed: int) -> tuple[list[dict], dict]:
    """Keep a `ratio` share of rows whose attempt the critique judged right (the CGD authors'
    filter_crit_ratios): the larger side is subsampled (seeded), the smaller kept whole, and rows
    whose critique gives no verdict are dropped. Row order is kept. Raises when no selection with
    at least one row of each side the ratio asks for exists."""
    check_right_ratio(ratio)
    verdicts = [row_verdict(r) for r in rows]
    right = [i for i, v in enumerate(verdicts) if v is True]
    wrong = [i for i, v in enumerate(verdicts) if v is False]
    # The share as the simple fraction it stands for (0.3 -> 3/10, 1/3 as a float -> 1/3), so 3 right
    # at 0.3 allow 10 rows, not the 9 that float rounding would leave.
    share = Fraction(ratio).limit_denominator(10**6)
    keep_right, keep_wrong = _ratio_counts(share, len(right), len(wrong))
    if keep_right + keep_wrong == 0:
        raise HarnessError(
            f"data.right_ratio={ratio} cannot be met: the critiques judged {len(right)} attempts right "
            f"and {len(wrong)} wrong ({len(rows) - len(right) - len(wrong)} without a verdict); "
            "use more problems, another ratio, or null"
        )
    rng = random.Random(seed)
    kept = set(rng.sample(right, keep_right)) | set(rng.sample(wrong, keep_wrong))
    info = {
        "target": ratio,
        "achieved": round(keep_right / (keep_right + keep_wrong), 4),
        "right": keep_right,
        "wrong": keep_wrong,
        "available_right": len(right),
        "available_wrong": len(wrong),
        "dropped_no_verdict": len(rows) - len(right) - len(wrong),
        "seed": seed,
    }
    return [r for i, r in enumerate(rows) if i in kept], info


def _ratio_counts(share: Fraction, n_right: int, n_wrong: int) -> tuple[int, int]:
    """(right, wrong) of the largest selection at `share` the rows allow; (0, 0) when there is none."""
    if share == 1:
        return n_right, 0
    if share == 0:
        return 0, n_wrong
    largest = min(n_right / share, n_wrong / (1 - share), n_right + n_wrong)
    for total in range(int(largest), 0, -1):
        keep_right = round(share * total)
        keep_wrong = total - keep_right
        if 0 < keep_right <= n_right and 0 < keep_wrong <= n_wrong:
            return keep_right, keep_wrong
    return 0, 0
