"""Empty or truncated teacher answers are failures: asked again, never cached, counted, refused past a bound."""

from __future__ import annotations

import json

import pytest
from test_teachers import ok_reply, serve

from cgd.teachers import annotate, make_teacher, save_annotations
from cgd.teachers.base import MAX_FAILED_FRACTION, TRIES
from harness.errors import HarnessError

QUICK = {"concurrency": 1, "max_retries": 0, "backoff_s": 0.01}


def items(n: int) -> list[dict]:
    return [
        {
            "id": str(i),
            "question": f"What is {i}+{i}?",
            "solution": f"\\boxed{{{2 * i}}}",
            "answer": str(2 * i),
            "attempt": f"I think \\boxed{{{2 * i}}}",
        }
        for i in range(n)
    ]


def cut_off(body: dict, content: str = "") -> tuple[int, dict, dict]:
    """What an overloaded server (or a reasoning model spending its budget elsewhere) sends."""
    status, headers, payload = ok_reply(body)
    payload["choices"][0]["message"]["content"] = content
    payload["choices"][0]["finish_reason"] = "length"
    return status, headers, payload


def test_empty_length_answers_are_refused_and_never_poison_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    healthy = {"on": False}

    def server(n, body):
        return ok_reply(body) if healthy["on"] else cut_off(body)

    with serve(server) as (fake, url):
        teacher = make_teacher(f"openai:{url}#m", **QUICK)
        with pytest.raises(HarnessError) as err:
            annotate(teacher, items(4))
        message = str(err.value)
        assert "\n" not in message and "4 of 4 problems" in message and "critique empty" in message
        assert "teacher.max_new_tokens" in message
        assert len(fake.requests) == 4 * TRIES  # each critique asked TRIES times, no refinement asked

        healthy["on"] = True  # the same server, now answering: a new run must ask again
        before = len(fake.requests)
        teacher = make_teacher(f"openai:{url}#m", **QUICK)
        rows = annotate(teacher, items(4))
    assert len(fake.requests) - before == 4 + 4  # 4 critiques and 4 refinements, none from the cache
    assert all(r["critique"].startswith("echo:") and r["refined"].startswith("echo:") for r in rows)


def test_a_glitch_is_retried_and_a_few_failures_are_dropped_and_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    n = 40  # one failure in 40 stays under the bound
    assert 1 <= MAX_FAILED_FRACTION * n
    seen: dict[str, int] = {}

    def server(number, body):
        text = json.dumps(body)
        seen[text] = seen.get(text, 0) + 1
        refining = "echo:" in text  # a refinement request quotes the critique
        if "What is 3+3" in text and not refining and seen[text] == 1:
            return cut_off(body)  # a glitch: the second try answers
        if "What is 7+7" in text and refining:
            return cut_off(body, "a refinement that runs out of tokens mid")  # every time
        return ok_reply(body)

    with serve(server) as (fake, url):
        teacher = make_teacher(f"openai:{url}#m", **QUICK)
        problems = items(n)
        problems[5]["attempt"] = ""  # the student's answer was lost: no material to critique
        problems[9]["attempt"] = "\n\n"  # whitespace is what the student said: critiqued as such
        rows = annotate(teacher, problems)
    assert sorted(int(r["id"]) for r in rows) == [i for i in range(n) if i not in (5, 7)]
    meta = save_annotations(tmp_path / "a.jsonl", rows, teacher.describe())
    assert meta["stats"]["rows"] == n - 2
    # The empty critique was asked again and passed; the greedy truncation would only repeat: dropped.
    assert meta["stats"]["failures"] == {"empty_attempt": 1, "retried": 1, "refined_truncated": 1}
    assert seen[next(t for t in seen if "What is 7+7" in t and "echo:" in t)] == 1


def test_empty_student_attempts_past_the_bound_are_refused_before_any_request(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    problems = items(4)
    for p in problems[:2]:
        p["attempt"] = ""
    with serve(lambda n, body: ok_reply(body)) as (fake, url):
        with pytest.raises(HarnessError, match="2 of 4 problems .*2 empty attempt"):
            annotate(make_teacher(f"openai:{url}#m", **QUICK), problems)
    assert fake.requests == []


def test_a_sampled_truncation_is_asked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    tries: list[int] = []

    def server(n, body):
        if "echo:" in json.dumps(body):  # the refinement: cut off the first time only
            tries.append(n)
            if len(tries) == 1:
                return cut_off(body, "half an answer")
        return ok_reply(body)

    with serve(server) as (fake, url):
        teacher = make_teacher(f"openai:{url}#m", temperature=0.7, **QUICK)
        rows = annotate(teacher, items(1))
    assert len(rows) == 1 and rows[0]["refined"].startswith("echo:")
    assert len(tries) == 2 and teacher.failures["retried"] == 1
