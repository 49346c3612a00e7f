"""The configuration of a `harness compare` run: one section per stage, each owned by its stage.

    model, backend, methods, seeds     who is trained and compared
    data      cgd.problems.ProblemsConfig   training problems and the probe's budget
    teacher   cgd.teachers.TeacherConfig    who critiques and refines
    train     cgd.train.TrainConfig         the matched training budget
    eval      harness.eval_config.EvalConfig  benchmarks, limits, graders, the vLLM engine
    analysis  harness.findings.AnalysisConfig   alpha, margin, multiplicity, power

Profiles (harness/profiles/*.yaml) set only what differs from these defaults; `harness config
--profile P` prints the resolved values with every key's help. The whole config is checked here,
before any stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cgd.methods import METHODS, check_methods, uses_teacher
from cgd.pipeline import BuildConfig, check_right_ratio
from cgd.problems import ProblemsConfig
from cgd.teachers import TeacherConfig
from harness.config import DEFAULT_PROFILE, apply_overrides, build, load_profile, section, setting, to_dict
from harness.defaults import DEFAULT_MODEL
from harness.errors import HarnessError
from harness.eval_config import EvalConfig
from harness.findings import AnalysisConfig
from harness.io import stable_hash
from training.selection import ValConfig
from training.train_config import TrainConfig


@dataclass
class RunConfig:
    model: str = setting(DEFAULT_MODEL, "the student: embedded name, HF dir, adapter dir or Hub id")
    backend: str = setting(
        "hf", "generation backend of probe and evaluation: hf | vllm | openai:<base_url>#<model>"
    )
    methods: list[str] = setting(["sft", "cft", "cgd"], f"methods to train, any of {', '.join(METHODS)}")
    seeds: list[int] = setting([0], "each method trains once per seed; reports show mean and spread")
    data: ProblemsConfig = section(ProblemsConfig, "training problems (the data and probe stages)")
    teacher: TeacherConfig = section(TeacherConfig, "the teacher of the teach stage")
    train: TrainConfig = section(TrainConfig, "the training budget every method gets")
    eval: EvalConfig = section(EvalConfig, "what every model is scored on")
    analysis: AnalysisConfig = section(AnalysisConfig, "how comparisons become verdicts (docs/statistics.md)")
    profile: str = setting(DEFAULT_PROFILE, "the profile this config came from", key=False)

    def __post_init__(self) -> None:
        check_methods(list(self.methods))
        if not self.seeds:
            raise HarnessError("seeds: give at least one training seed")
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:  # a repeated seed trains the same model twice and reads as independent evidence
            raise HarnessError(
                f"seeds: {', '.join(map(str, repeated))} given more than once; give distinct seeds"
            )
        self.teacher.check()
        check_right_ratio(self.data.right_ratio)
        if self.backend == "vllm":
            from harness.backends.vllm import check_data_parallel

            check_data_parallel(self.eval.vllm.data_parallel_size)
        # The stages see the run's first seed where one seed decides them (problem shuffle, evaluation).
        self.data = replace(self.data, seed=self.seeds[0])
        self.eval.seed = self.seeds[0]

    # -- what each stage receives -----------------------------------------------------------------
    def build_config(self) -> BuildConfig:
        return BuildConfig(
            methods=list(self.methods),
            model=self.model,
            backend=self.backend,
            vllm=self.eval.vllm,
            teacher=self.teacher.model,
            teacher_options=self.teacher.options(),
            teacher_file=self.teacher.file,
            problems=self.data,
            seed=self.seeds[0],
            right_ratio=self.data.right_ratio,
        )

    def train_config(self, seed: int) -> TrainConfig:
        return replace(self.train, model=self.model, seed=seed)

    def val_config(self) -> ValConfig:
        """Checkpoint selection scores the validation split as the math benchmarks score their items."""
        from harness.registry import BENCHMARKS

        return ValConfig(
            max_new_tokens=self.eval.max_new_tokens or BENCHMARKS["math500"].max_new_tokens,
            math_grader=self.eval.math_grader,
            reasoning_end=self.eval.reasoning_end,
            backend=self.backend,
            backend_options=self.eval.backend_options(self.backend),
        )

    def uncertainty_wanted(self) -> bool:
        return bool(
            self.analysis.uncertainty and self.data.n_val and any(uses_teacher(m) for m in self.methods)
        )

    def labels(self) -> list[tuple[str, str, int]]:
        """(label, method, seed) per trained variant; the seed suffix appears only with several seeds."""
        single = len(self.seeds) == 1
        return [(m if single else f"{m}@seed{s}", m, s) for m in self.methods for s in self.seeds]

    def as_dict(self) -> dict:
        return {**to_dict(self), "profile": self.profile}

    def run_id(self) -> str:
        """Same resolved config → same run directory, which is what makes re-running resume."""
        return f"compare-{self.profile}-{stable_hash(self.as_dict())[:10]}"


def resolve(profile: str = DEFAULT_PROFILE, overrides: list[str] | None = None) -> RunConfig:
    """The profile's values over the defaults, `--set` items applied, every key and value checked."""
    tree = apply_overrides(load_profile(profile), overrides or [], RunConfig)
    tree.pop("profile", None)
    config = build(RunConfig, tree)
    config.profile = profile
    return config


# Keys config.json records next to the config itself.
_RECORD_ONLY = ("profile", "run_id", "git_revision", "provenance")


def from_record(record: dict) -> RunConfig:
    """The config a run recorded in its config.json (keys added since then take their defaults)."""
    config = build(RunConfig, {k: v for k, v in record.items() if k not in _RECORD_ONLY})
    config.profile = str(record.get("profile", DEFAULT_PROFILE))
    return config
