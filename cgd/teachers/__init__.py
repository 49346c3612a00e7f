"""Teachers write the critique c and the refined answer ŷ; `make_teacher` picks one from --teacher."""

from __future__ import annotations

from dataclasses import dataclass, fields

from cgd.teachers.base import (
    MAX_FAILED_FRACTION,
    REQUIRED_COLUMNS,
    ModelTeacher,
    Sampling,
    Teacher,
    annotate,
    load_annotations,
    save_annotations,
    typed_options,
)
from cgd.teachers.reference import REVEALS, ReferenceTeacher
from harness.config import setting
from harness.errors import HarnessError

TEACHER_SPECS = ("reference", "openai:<base_url>#<model>", "hf:<model>")
# Options arrive as text from --set; sampling values are cast here, backend options by the backend.
SAMPLING_OPTIONS = {"temperature": float, "max_new_tokens": int, "seed": int}
# The teach stage's own option: not the teacher's, so make_teacher and the backends never see it.
STAGE_OPTIONS = ("max_dropped_fraction",)


@dataclass
class TeacherConfig:
    """The `teacher:` section: who writes the critique c and the refined answer ŷ, and how.

    Options left null keep the teacher's own default; the reference teacher takes none of them."""

    model: str = setting("reference", "reference | openai:<base_url>#<model> | hf:<model>")
    file: str | None = setting(None, "an existing critique dataset (JSONL) instead of probing + teaching")
    temperature: float | None = setting(
        None, "sampling temperature of critiques and refinements (default 0: greedy)", minimum=0.0
    )
    max_new_tokens: int | None = setting(
        None, "tokens per critique and per refinement (default 1024)", minimum=1
    )
    concurrency: int | None = setting(None, "openai: requests in flight (default 8)", minimum=1)
    api_key_env: str | None = setting(
        None, "openai: variable holding the API key, sent as a Bearer token (default OPENAI_API_KEY)"
    )
    timeout_s: float | None = setting(
        None, "openai: seconds before a request is retried (default 300)", minimum=1
    )
    max_dropped_fraction: float | None = setting(
        None,
        "share of problems the teach stage may drop, after retries, for an empty or truncated attempt, "
        "critique or refinement (counted in teach/annotations.meta.json and the report) before it stops "
        f"(default {MAX_FAILED_FRACTION}); a small served model that loops to max_new_tokens needs more",
        minimum=0.0,
    )
    reveal: str | None = setting(
        None,
        "reference: what its critique gives away: none (default: verdict, where the attempt goes astray, "
        "the missing step in outline) | answer (also the final answer) | steps (the answer and the "
        "reference steps verbatim: the first version)",
        choices=REVEALS,
    )

    def options(self) -> dict:
        """The options that were set, as make_teacher takes them."""
        return {f.name: getattr(self, f.name) for f in fields(self)[2:] if getattr(self, f.name) is not None}

    def check(self) -> None:
        if not self.file:
            check_options(self.model, self.options())


def max_dropped_fraction(options: dict) -> float:
    """The share of problems the teach stage may drop (teacher.max_dropped_fraction), checked."""
    value = options.get("max_dropped_fraction")
    if value is None:
        return MAX_FAILED_FRACTION
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise HarnessError(f"teacher.max_dropped_fraction must be a share between 0 and 1, got {value!r}")
    return share


def teacher_options(options: dict) -> dict:
    """The options that configure the teacher itself (the stage's own taken out)."""
    return {k: v for k, v in options.items() if k not in STAGE_OPTIONS}


def split_sampling(options: dict) -> tuple[Sampling, dict]:
    try:
        sampling = {k: cast(options[k]) for k, cast in SAMPLING_OPTIONS.items() if k in options}
    except ValueError as exc:
        raise HarnessError(f"teacher: bad sampling option value ({exc})") from None
    return Sampling(**sampling), {k: v for k, v in options.items() if k not in SAMPLING_OPTIONS}


def reference_options(rest: dict) -> dict:
    """The reference teacher's one option, `reveal`; sampling options mean nothing to it."""
    from cgd.teachers.reference import DEFAULT_REVEAL, check_reveal

    unknown = sorted(set(rest) - {"reveal"})
    if unknown:
        raise HarnessError(f"unknown option {', '.join(unknown)} for the reference teacher; valid: reveal")
    return {"reveal": check_reveal(str(rest.get("reveal", DEFAULT_REVEAL)))}


def check_options(spec: str, options: dict) -> None:
    """Cast the options as make_teacher will, without building the teacher: a typo fails before the probe."""
    max_dropped_fraction(options)
    _, rest = split_sampling(teacher_options(options))
    if spec == "reference":
        reference_options(rest)
    elif spec.startswith("openai:"):
        from cgd.teachers.openai import BACKEND_OPTIONS

        typed_options(rest, BACKEND_OPTIONS, "openai")
    elif spec.startswith("hf:"):
        from cgd.teachers.hf import BACKEND_OPTIONS

        typed_options(rest, BACKEND_OPTIONS, "hf")


def teacher_identity(spec: str, options: dict) -> dict:
    """What decides a teacher's output, known without loading it: the teach stage's inputs."""
    sampling, rest = split_sampling(teacher_options(options))
    # Set only: a stage that passed at one share must not be reused under a stricter one.
    stage = {k: max_dropped_fraction(options) for k in STAGE_OPTIONS if options.get(k) is not None}
    if spec == "reference":
        return {"teacher": spec, **reference_options(rest), **stage}
    identity = {
        "teacher": spec,
        "sampling": vars(sampling),
        "options": {k: str(v) for k, v in rest.items()},
        **stage,
    }
    if spec.startswith("hf:"):
        from harness.models import resolve_model

        identity["fingerprint"] = resolve_model(spec.removeprefix("hf:")).fingerprint
    return identity


def make_teacher(spec: str, **options) -> Teacher:
    """`options` mixes sampling (temperature, max_new_tokens, seed) and backend options (api_key_env, ...);
    the stage's own (max_dropped_fraction) are left to annotate."""
    sampling, options = split_sampling(teacher_options(options))
    if spec == "reference":
        return ReferenceTeacher(**reference_options(options))
    if spec.startswith("openai:"):
        from cgd.teachers.openai import make_openai_teacher

        return make_openai_teacher(spec, sampling, **options)
    if spec.startswith("hf:") and len(spec) > 3:
        from cgd.teachers.hf import make_hf_teacher

        return make_hf_teacher(spec, sampling, **options)
    raise HarnessError(f"unknown teacher {spec!r}; use one of {', '.join(TEACHER_SPECS)}")


__all__ = [
    "REQUIRED_COLUMNS",
    "ModelTeacher",
    "ReferenceTeacher",
    "Sampling",
    "Teacher",
    "annotate",
    "load_annotations",
    "make_teacher",
    "max_dropped_fraction",
    "save_annotations",
    "teacher_identity",
]
