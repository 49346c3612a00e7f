"""Teachers write the critique c and the refined answer ŷ; `make_teacher` picks one from --teacher."""

from __future__ import annotations

from cgd.teachers.base import (
    REQUIRED_COLUMNS,
    ModelTeacher,
    Sampling,
    Teacher,
    annotate,
    load_annotations,
    save_annotations,
    typed_options,
)
from cgd.teachers.reference import ReferenceTeacher
from harness.errors import HarnessError

TEACHER_SPECS = ("reference", "openai:<base_url>#<model>", "hf:<model>")
# Options arrive as text from --set; sampling values are cast here, backend options by the backend.
SAMPLING_OPTIONS = {"temperature": float, "max_new_tokens": int, "seed": int}


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
    _, rest = split_sampling(options)
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
    sampling, rest = split_sampling(options)
    if spec == "reference":
        return {"teacher": spec, **reference_options(rest)}
    identity = {"teacher": spec, "sampling": vars(sampling), "options": {k: str(v) for k, v in rest.items()}}
    if spec.startswith("hf:"):
        from harness.models import resolve_model

        identity["fingerprint"] = resolve_model(spec.removeprefix("hf:")).fingerprint
    return identity


def make_teacher(spec: str, **options) -> Teacher:
    """`options` mixes sampling (temperature, max_new_tokens, seed) and backend options (api_key_env, ...)."""
    sampling, options = split_sampling(options)
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
    "save_annotations",
    "teacher_identity",
]
