"""Generation backends behind one interface (see base.py); make_backend picks one from a spec."""

from __future__ import annotations

from contextlib import contextmanager

from harness.backends.base import Backend, GenRequest, GenResult
from harness.errors import HarnessError

BACKENDS = ("hf", "vllm", "openai:<base_url>#<model>")


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """`openai:<base_url>#<model>` → (base_url, model)."""
    body = spec.removeprefix("openai:")
    base_url, sep, model = body.partition("#")
    if not sep or not base_url.startswith(("http://", "https://")) or not model:
        raise HarnessError(
            f"bad OpenAI-compatible spec {spec!r}: expected openai:<http(s)://base_url>#<model>"
        )
    return base_url.rstrip("/"), model


def make_backend(model: str, backend: str = "hf", cache: bool = True, **options) -> Backend:
    """Build the backend for `model`; `cache` wraps it so identical requests are never recomputed."""
    if model.startswith("openai:") or backend.startswith("openai"):
        from harness.backends.openai import OpenAIBackend

        inner = OpenAIBackend(
            *parse_openai_spec(model if model.startswith("openai:") else backend), **options
        )
    else:
        from harness.models import resolve_model

        resolved = resolve_model(model, base=options.pop("base_model", None))
        if backend == "hf":
            from harness.backends.hf import HFBackend

            inner = HFBackend(resolved, **options)
        elif backend == "vllm":
            from harness.backends.vllm import VLLMBackend

            inner = VLLMBackend(resolved, **options)
        else:
            raise HarnessError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not cache:
        return inner
    from harness.backends.cache import CachedBackend

    return CachedBackend(inner)


@contextmanager
def open_backend(model: str, backend: str = "hf", cache: bool = True, **options):
    """make_backend for one stage: an in-process vLLM engine gives its GPU memory back when the stage ends,
    so the next model of a run (compare evaluates several in one process) can load."""
    opened = make_backend(model, backend, cache, **options)
    try:
        yield opened
    finally:
        close = getattr(opened, "close", None)
        if close is not None:
            close()


__all__ = ["Backend", "GenRequest", "GenResult", "make_backend", "open_backend", "BACKENDS"]
