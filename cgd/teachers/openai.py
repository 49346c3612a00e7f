"""Teacher on any OpenAI-compatible chat server: `openai:<base_url>#<model>` (vLLM, an API).

Concurrency, timeouts, retries and the API key variable are the backend's options; every answer is
committed to the generation cache as it arrives, so an interrupted build asks nothing twice.
"""

from __future__ import annotations

from cgd.teachers.base import ModelTeacher, Sampling, typed_options

BACKEND_OPTIONS = {
    "api_key_env": str,
    "concurrency": int,
    "timeout_s": float,
    "max_retries": int,
    "backoff_s": float,
    "max_backoff_s": float,
}


def make_openai_teacher(spec: str, sampling: Sampling, cache: bool = True, **options) -> ModelTeacher:
    from harness.backends import make_backend

    backend = make_backend(spec, cache=cache, **typed_options(options, BACKEND_OPTIONS, "openai"))
    return ModelTeacher(spec, backend, sampling)
