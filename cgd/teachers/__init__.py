"""Teachers write the critique c and the refined answer ŷ; `make_teacher` picks one from --teacher."""

from __future__ import annotations

from dataclasses import dataclass, fields

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
from cgd.teachers.reference import REVEALS, ReferenceTeacher
from harness.config import setting
from harness.errors import HarnessError

TEACHER_SPECS = ("reference", "openai:<base_url>#<model>", "hf:<model>")
# Options arrive as text from --set; sampling values are cast here, backend options by the backend.
SAMPLING_OPTIONS = {"temperature": float, "max_new_tokens": int, "seed": int}


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
