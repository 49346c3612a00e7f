"""Teacher on a local transformers model, `hf:<model>`: the same backend evaluation uses."""

from __future__ import annotations

from cgd.teachers.base import ModelTeacher, Sampling, typed_options

BACKEND_OPTIONS = {"batch_size": int, "device": str, "threads": int, "base_model": str}


def make_hf_teacher(spec: str, sampling: Sampling, cache: bool = True, **options) -> ModelTeacher:
    from harness.backends import make_backend

    backend = make_backend(
        spec.removeprefix("hf:"), backend="hf", cache=cache, **typed_options(options, BACKEND_OPTIONS, "hf")
    )
    return ModelTeacher(spec, backend, sampling)
