"""Any OpenAI-compatible HTTP server (vLLM, an API) behind the Backend interface.

Chat requests go to /v1/chat/completions, raw prompts to /v1/completions. Requests run in a bounded
thread pool; 429, 5xx, timeouts and refused connections are retried with exponential backoff, then
the call stops with one HarnessError naming the server. Every result that finished before that was
already handed to `on_result`, so the cache in front of this backend keeps it and a re-run resumes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import requests

from harness.backends.base import GenRequest, GenResult, truncate_at_stop
from harness.errors import HarnessError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))


class _Retryable(Exception):
    """A failure worth asking again: the server is busy, restarting or briefly unreachable."""


class OpenAIBackend:
    tokenizer = None  # the server tokenizes; nothing local can

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 300.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.api_key = os.environ.get(api_key_env)
        if self.api_key is None and api_key_env != "OPENAI_API_KEY":
            # A user who names a variable expects it to be used; a local vLLM needs no key at all.
            raise HarnessError(
                f"environment variable {api_key_env} (the API key for {self.base_url}) is not set"
            )
        self.fingerprint = f"openai:{self.base_url}#{model}"
        self._local = threading.local()

    def url(self, endpoint: str) -> str:
        root = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        return f"{root}/{endpoint}"

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        # The server applies its own chat template; the messages themselves are the exact prompt.
        return json.dumps(list(messages), ensure_ascii=False)

    def loglikelihood(self, requests_):
        raise HarnessError(
            f"log-likelihoods are not supported by the OpenAI-compatible backend ({self.base_url})"
        )

    def generate(
        self, requests_: Sequence[GenRequest], on_result: Callable[[int, GenResult], None] | None = None
    ) -> list[GenResult]:
        results: list[GenResult | None] = [None] * len(requests_)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        try:
            pending = {pool.submit(self._one, r): i for i, r in enumerate(requests_)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                failure = None
                # Hand over every answer that finished before raising: the caller's cache keeps them.
                for future in done:
                    i = pending.pop(future)
                    if future.exception() is not None:
                        failure = failure or future.exception()
                        continue
                    results[i] = future.result()
                    if on_result is not None:
                        on_result(i, results[i])
                if failure is not None:
                    raise self._stopped(failure, results)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def _stopped(self, exc: BaseException, results: list) -> HarnessError:
        finished = sum(r is not None for r in results)
        return HarnessError(
            f"{exc} ({finished} of {len(results)} answers finished before this and are "
            "kept in the cache; run the same command again to resume)"
        )

    # --- one request ------------------------------------------------------------------------
    def _payload(self, r: GenRequest) -> tuple[str, dict]:
        body: dict = {"model": self.model, "max_tokens": r.max_new_tokens, "temperature": r.temperature}
        if r.temperature > 0:
            body["seed"] = r.seed
        if r.stop:
            body["stop"] = list(r.stop)
        if r.messages is not None:
            return "chat/completions", {**body, "messages": [dict(m) for m in r.messages]}
        return "completions", {**body, "prompt": r.prompt}

    def _one(self, r: GenRequest) -> GenResult:
        endpoint, body = self._payload(r)
        started = time.time()
        data = self._post_with_retries(self.url(endpoint), body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if endpoint.startswith("chat") else choice["text"]
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise HarnessError(
                f"{self.url(endpoint)} sent an answer that is not an OpenAI completion: "
                f"{json.dumps(data)[:200]}"
            ) from None
        text, stopped = truncate_at_stop(text or "", r.stop)
        finish = "length" if choice.get("finish_reason") == "length" and not stopped else "stop"
        return GenResult(
            text,
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            finish,
            time.time() - started,
        )

    def _session(self) -> requests.Session:
        # A Session is not safe to share between threads; one per worker thread keeps connections alive.
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _post_with_retries(self, url: str, body: dict) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(url, body, headers)
            except _Retryable as exc:
                last, wait_s = str(exc.args[0]), exc.args[1]
            if attempt < self.max_retries:
                delay = min(self.max_backoff_s, max(wait_s or 0.0, self.backoff_s * 2**attempt))
                log.warning("%s: %s; retry %d/%d in %.1fs", url, last, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise HarnessError(
            f"teacher/model server {self.base_url} failed after {self.max_retries + 1} attempts: {last}"
        )

    def _post(self, url: str, body: dict, headers: dict) -> dict:
        try:
            resp = self._session().post(
                url, json=body, headers=headers, timeout=(min(10.0, self.timeout_s), self.timeout_s)
            )
        except requests.Timeout:
            raise _Retryable(f"no answer within {self.timeout_s:g}s", None) from None
        except requests.ConnectionError as exc:
            raise _Retryable(f"cannot connect ({type(exc).__name__})", None) from None
        if resp.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {resp.status_code} {resp.text[:200]!r}", _retry_after(resp))
        if resp.status_code >= 400:
            raise HarnessError(f"{url} refused the request: HTTP {resp.status_code} {resp.text[:300]!r}")
        try:
            return resp.json()
        except ValueError:
            raise HarnessError(
                f"{url} answered with something that is not JSON: {resp.text[:200]!r}"
            ) from None


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
