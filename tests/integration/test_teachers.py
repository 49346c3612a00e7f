"""Teachers: the reference critique agrees with the math checker; the OpenAI backend survives faults."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cgd import prompts
from cgd.teachers import (
    annotate,
    check_options,
    load_annotations,
    make_teacher,
    save_annotations,
    teacher_identity,
)
from cgd.teachers.leakage import ngram_coverage, states_answer_many
from cgd.teachers.reference import (
    REVEALS,
    ReferenceTeacher,
    ends_with_boxed,
    missed_steps,
    outline,
    reference_critique,
    reference_refinement,
    split_steps,
)
from harness.backends import make_backend
from harness.backends.base import GenRequest
from harness.backends.openai import OpenAIBackend
from harness.checkers.math import check_many, extract_boxed
from harness.errors import HarnessError

FAST_RETRY = {"backoff_s": 0.01, "max_backoff_s": 0.02, "timeout_s": 5.0}


# ------------------------------------------------------------------ reference teacher


@pytest.fixture(scope="module")
def math_problems(data_dir):
    from cgd.problems import ProblemsConfig, load_problems

    # Few problems: scoring a worked solution with sympy can take seconds on a busy CPU.
    train, _ = load_problems(ProblemsConfig(n_problems=12, n_val=0, seed=3))
    return train


def attempts_for(problem: dict) -> list[str]:
    """A spread of attempts: the reference itself, a re-formatted right answer, wrong, none, unboxed."""
    gold = problem["answer"]
    return [
        problem["solution"],
        f"After some work, the answer is $\\boxed{{ {gold} }}$.",
        "I computed it and got \\boxed{-123457}.",
        "I could not finish this one.",
        f"The answer is {gold}",
        "",
    ]


def test_reference_verdict_agrees_with_the_math_checker(math_problems):
    items = [{**p, "attempt": attempt} for p in math_problems for attempt in attempts_for(p)]
    critiques = ReferenceTeacher().critique(items)
    verdicts = check_many([(it["answer"], it["attempt"]) for it in items])
    assert len(critiques) == 6 * len(math_problems)
    for item, critique, verdict in zip(items, critiques, verdicts):
        assert prompts.parse_verdict(critique.text) is verdict.correct, item["attempt"]
        assert critique.text.rstrip().splitlines()[-1] in (prompts.VERDICT_RIGHT, prompts.VERDICT_WRONG)
    # The spread really covers both verdicts.
    assert {v.correct for v in verdicts} == {True, False}


@pytest.mark.parametrize("reveal", REVEALS)
def test_single_critique_matches_the_batched_one(math_problems, reveal):
    p = math_problems[0]
    item = {**p, "attempt": "So \\boxed{-123457}."}
    assert (
        reference_critique(p["question"], p["solution"], p["answer"], item["attempt"], reveal)
        == ReferenceTeacher(reveal).critique([item])[0].text
    )


def test_reveal_steps_is_the_first_version_quoting_the_reference(math_problems):
    specific = 0
    for p in math_problems:
        critique = reference_critique(
            p["question"], p["solution"], p["answer"], "So \\boxed{-123457}.", reveal="steps"
        )
        assert "-123457" in critique and p["answer"] in critique
        quoted = [line[2:] for line in critique.splitlines() if line.startswith("- ")]
        # Quoted steps are the reference's own sentences (possibly shortened).
        assert all(q.removesuffix(" ...") in p["solution"] for q in quoted)
        specific += bool(quoted)
    assert specific >= len(math_problems) // 2


def test_reference_teacher_is_deterministic(math_problems):
    items = [{**p, "attempt": "x = 3, so \\boxed{3}"} for p in math_problems[:5]]
    teacher = ReferenceTeacher()
    first = [w.text for w in teacher.critique(items)]
    assert first == [w.text for w in ReferenceTeacher().critique(items)]


def wrong_and_right_items(problems: list[dict]) -> list[dict]:
    """Per problem: wrong (with a stray line), unboxed, empty, and right attempts."""
    attempts = [
        "First, 977 + 9931 = 88888.\nThen the result is \\boxed{-123457}.",
        "I could not finish this one.",
        "",
        None,  # the reference solution itself
    ]
    return [{**p, "attempt": a if a is not None else p["solution"]} for p in problems for a in attempts]


def test_reveal_none_never_states_the_gold_yet_explains(math_problems):
    items = wrong_and_right_items(math_problems)
    critiques = [w.text for w in ReferenceTeacher("none").critique(items)]
    assert not any(states_answer_many([(it["answer"], c) for it, c in zip(items, critiques)]))
    verdicts = check_many([(it["answer"], it["attempt"]) for it in items])
    assert [prompts.parse_verdict(c) for c in critiques] == [v.correct for v in verdicts]
    wrong = [(it, c) for it, c in zip(items, critiques) if prompts.parse_verdict(c) is False]
    # The stray line of the first attempt is named, the wrong answer quoted, the missing step outlined.
    first = [c for it, c in wrong if it["attempt"].startswith("First")]
    assert all("$977$" in c and "$-123457$" in c for c in first)
    outlined = [c for _, c in wrong if prompts.REF_HIDDEN in c]
    assert len(outlined) >= len(wrong) // 2
    # Its outlines stay short: far less of ŷ appears in them than in the reveal=steps critiques.
    steps = [w.text for w in ReferenceTeacher("steps").critique(items)]
    refined = [reference_refinement(it["solution"], it["answer"]) for it in items]
    none_cov = sum(ngram_coverage(r, c) or 0 for r, c in zip(refined, critiques))
    steps_cov = sum(ngram_coverage(r, c) or 0 for r, c in zip(refined, steps))
    assert none_cov < steps_cov / 2


def test_reveal_answer_states_the_gold_and_nothing_more_of_the_reference(math_problems):
    items = [it for it in wrong_and_right_items(math_problems) if not it["attempt"].startswith("I")]
    critiques = [w.text for w in ReferenceTeacher("answer").critique(items)]
    assert all(states_answer_many([(it["answer"], c) for it, c in zip(items, critiques)]))
    hidden = [w.text for w in ReferenceTeacher("none").critique(items)]
    # The same critique as reveal=none apart from the answer sentence.
    assert [c.splitlines()[1:] for c in critiques] == [c.splitlines()[1:] for c in hidden]


def test_reveal_option_reaches_the_teacher_and_its_identity():
    assert make_teacher("reference").reveal == "none"
    assert make_teacher("reference", reveal="steps").describe()["reveal"] == "steps"
    assert teacher_identity("reference", {}) == {"teacher": "reference", "reveal": "none"}
    assert teacher_identity("reference", {"reveal": "answer"})["reveal"] == "answer"
    with pytest.raises(HarnessError, match="none, answer, steps"):
        make_teacher("reference", reveal="all")
    with pytest.raises(HarnessError, match="valid: reveal"):
        check_options("reference", {"concurrency": 4})
    with pytest.raises(HarnessError, match="reveal"):
        check_options("openai:http://127.0.0.1:9#m", {"reveal": "none"})


def test_reference_refinement_ends_in_the_boxed_gold(math_problems):
    for p in math_problems:
        refined = reference_refinement(p["solution"], p["answer"])
        assert refined.startswith(p["solution"].strip())
        assert ends_with_boxed(refined, p["answer"])
        assert extract_boxed(refined) == p["answer"]


def test_missed_steps_are_the_ones_whose_new_numbers_are_absent():
    solution = "The sides are 3 and 4. So the hypotenuse is $\\sqrt{9+16}=5$. The area is $6$."
    assert missed_steps(solution, "3^2+4^2 = 9+16, hypotenuse 5; area 6", "A 3-4 triangle") == []
    assert missed_steps(solution, "9+16 gives 5", "A 3-4 triangle") == ["The area is $6$."]
    assert split_steps("Let $x=1.5$. Then $y=2.$ Done.") == ["Let $x=1.5$.", "Then $y=2.$ Done."]
    assert split_steps("Since\n\\[a=2.\n\\]we stop. [asy]\ndraw((0,0)--(1,1));\n[/asy] Next.\n\nEnd") == [
        "Since\n\\[a=2.\n\\]we stop.",
        "Next.",
        "End",
    ]


def test_without_countable_steps_a_wrong_attempt_sees_how_a_solution_begins():
    solution = "Shifting the graph left gives the picture. The correct graph is $\\boxed{\\text{A}}$."
    attempt = "It is \\boxed{\\text{B}}."
    critique = reference_critique("Which graph?", solution, "\\text{A}", attempt, reveal="steps")
    assert critique.splitlines() == [
        prompts.REF_ANSWER_DIFFERS.format(pred="\\text{B}", gold="\\text{A}"),
        prompts.REF_OUTLINE,
        "- Shifting the graph left gives the picture.",
        "- The correct graph is $\\boxed{\\text{A}}$.",
        prompts.VERDICT_WRONG,
    ]
    # reveal=none outlines the first step only: the last one is where a solution states its answer.
    assert reference_critique("Which graph?", solution, "\\text{A}", attempt).splitlines() == [
        prompts.REF_ANSWER_WRONG.format(pred="\\text{B}"),
        prompts.REF_OUTLINE_HIDDEN.format(hint="Shifting the graph left gives the picture."),
        prompts.VERDICT_WRONG,
    ]


def test_an_outline_withholds_derived_numbers_boxes_and_the_gold():
    step = "The sides are 3 and 4, so the hypotenuse is $\\sqrt{9+16}=5$ and $x=\\boxed{5}$."
    assert outline(step, "A right triangle has legs 3 and 4.", "5") == (
        "The sides are 3 and 4, so the hypotenuse is $\\sqrt{?+?}=?$ and $?$."
    )
    assert outline("Factor: $x^2-1=(x-1)(x+1)$.", "Factor $x^2-1$.", "(x-1)(x+1)") == "Factor: $?$."


def test_annotations_round_trip_and_brought_files_name_missing_columns(tmp_path, math_problems):
    items = [{**p, "attempt": "\\boxed{1}"} for p in math_problems[:4]]
    rows = annotate(ReferenceTeacher(), items)
    assert all(r["verdict"] is r["attempt_correct"] for r in rows)
    assert all(r["refined_correct"] for r in rows)
    path = tmp_path / "critiques.jsonl"
    meta = save_annotations(path, rows, ReferenceTeacher().describe())
    assert meta["prompts_version"] == prompts.PROMPTS_VERSION and meta["teacher"] == "reference"
    loaded, loaded_meta = load_annotations(path)
    assert loaded == rows and loaded_meta == meta

    brought = tmp_path / "brought.jsonl"
    brought.write_text(json.dumps({"question": "q", "solution": "s", "answer": 1, "attempt": "a"}) + "\n")
    with pytest.raises(HarnessError, match="critique, refined"):
        load_annotations(brought)


def test_unknown_teacher_and_option_are_refused():
    with pytest.raises(HarnessError, match="reference"):
        make_teacher("gpt")
    with pytest.raises(HarnessError, match="concurrency"):
        make_teacher("openai:http://127.0.0.1:9#m", cache=False, concurency="4")


# ------------------------------------------------------------------ a fake OpenAI server


class FakeServer:
    """An OpenAI-like server on 127.0.0.1 whose behaviour per request is `script(request_no, body)`."""

    def __init__(self, script):
        self.script = script
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def answer(self, path: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
        with self.lock:
            self.requests.append({"path": path, **body})
            self.headers.append(headers)
            number = len(self.requests)
        return self.script(number, body)


def ok_reply(body: dict) -> tuple[int, dict, dict]:
    content = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    text = f"echo: {content[-40:]}"
    choice = {"message": {"role": "assistant", "content": text}} if "messages" in body else {"text": text}
    return (
        200,
        {},
        {
            "choices": [{**choice, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        },
    )


@contextmanager
def serve(script, delay_s: float = 0.0):
    fake = FakeServer(script)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                status, headers, payload = fake.answer(self.path, body, dict(self.headers))
                time.sleep(delay_s)
            finally:
                with fake.lock:
                    fake.in_flight -= 1
            data = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def chat(text: str, **kw) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": text},), max_new_tokens=32, **kw)


def test_chat_and_completion_requests_reach_the_right_endpoints(monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sekret")
    with serve(lambda n, body: ok_reply(body)) as (fake, url):
        backend = OpenAIBackend(url, "teacher-7b", api_key_env="MY_TEACHER_KEY", **FAST_RETRY)
        results = backend.generate(
            [chat("hello"), GenRequest(prompt="raw text", max_new_tokens=5, stop=("\n",))]
        )
    assert [r.text for r in results] == ["echo: hello", "echo: raw text"]
    assert (results[0].prompt_tokens, results[0].completion_tokens, results[0].finish_reason) == (
        11,
        7,
        "stop",
    )
    by_path = {r["path"]: r for r in fake.requests}
    assert by_path["/v1/chat/completions"]["messages"] == [{"role": "user", "content": "hello"}]
    assert by_path["/v1/chat/completions"]["model"] == "teacher-7b"
    assert by_path["/v1/chat/completions"]["max_tokens"] == 32
    assert by_path["/v1/completions"]["stop"] == ["\n"]
    assert all(h.get("Authorization") == "Bearer sekret" for h in fake.headers)


def test_a_named_but_unset_key_variable_is_an_error(monkeypatch):
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(HarnessError, match="NOT_SET_KEY"):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", api_key_env="NOT_SET_KEY")


def test_server_errors_and_rate_limits_are_retried_then_succeed():
    def flaky(n, body):
        if n <= 2:
            return 500, {}, {"error": "warming up"}
        if n == 3:
            return 429, {"Retry-After": "0"}, {"error": "slow down"}
        return ok_reply(body)

    with serve(flaky) as (fake, url):
        [result] = OpenAIBackend(url, "m", **FAST_RETRY).generate([chat("again")])
    assert result.text == "echo: again"
    assert len(fake.requests) == 4


def test_a_client_error_is_not_retried():
    with serve(lambda n, body: (401, {}, {"error": "bad key"})) as (fake, url):
        with pytest.raises(HarnessError, match="HTTP 401"):
            OpenAIBackend(url, "m", **FAST_RETRY).generate([chat("x")])
    assert len(fake.requests) == 1


def test_refused_connection_gives_up_with_a_message_naming_the_server():
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(HarnessError) as err:
        OpenAIBackend(url, "m", max_retries=2, **FAST_RETRY).generate([chat("x")])
    assert url in str(err.value) and "3 attempts" in str(err.value) and "cannot connect" in str(err.value)


def test_slow_answers_time_out_and_are_retried():
    with serve(lambda n, body: ok_reply(body), delay_s=0.5) as (fake, url):
        with pytest.raises(HarnessError, match="no answer within"):
            OpenAIBackend(url, "m", max_retries=1, backoff_s=0.01, timeout_s=0.1).generate([chat("x")])
    assert len(fake.requests) == 2


def test_concurrency_is_bounded():
    with serve(lambda n, body: ok_reply(body), delay_s=0.05) as (fake, url):
        results = OpenAIBackend(url, "m", concurrency=2, **FAST_RETRY).generate(
            [chat(f"q{i}") for i in range(8)]
        )
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(8)]
    assert fake.max_in_flight <= 2


def test_loglikelihood_is_refused():
    with pytest.raises(HarnessError, match="not supported"):
        OpenAIBackend("http://127.0.0.1:1/v1", "m").loglikelihood([([1], [2])])


def test_a_failed_teacher_run_keeps_finished_answers_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    items = [
        {
            "id": str(i),
            "question": f"What is {i}+{i}?",
            "solution": f"\\boxed{{{2 * i}}}",
            "answer": str(2 * i),
            "attempt": f"\\boxed{{{2 * i}}}",
        }
        for i in range(6)
    ]

    def fails_on_the_last_problem(n, body):
        return (500, {}, {"error": "boom"}) if "What is 5+5" in json.dumps(body) else ok_reply(body)

    with serve(fails_on_the_last_problem) as (fake, url):
        teacher = make_teacher(f"openai:{url}#m", concurrency=1, max_retries=1, backoff_s=0.01)
        with pytest.raises(HarnessError) as err:
            annotate(teacher, items)
        assert url.removesuffix("/v1") in str(err.value) and "kept in the cache" in str(err.value)
        asked_before = len(fake.requests)

    with serve(lambda n, body: ok_reply(body)) as (fake2, url2):
        teacher = make_teacher(f"openai:{url}#m", concurrency=1)  # same spec: same cache keys
        teacher.backend.inner.base_url = url2.removesuffix("/v1")  # the server came back on another port
        rows = annotate(teacher, items)
    assert len(rows) == 6 and all(r["critique"].startswith("echo:") for r in rows)
    # Critiques 0-4 finished and are cached; only critique 5 and the 6 refinements are asked again.
    assert asked_before == 5 + 2  # 5 answers, then problem 5 twice (one retry)
    assert len(fake2.requests) == 1 + 6


def test_openai_spec_goes_through_make_backend():
    backend = make_backend("openai:http://127.0.0.1:1/v1#some-model", cache=False)
    assert isinstance(backend, OpenAIBackend) and backend.model == "some-model"
    assert backend.url("chat/completions") == "http://127.0.0.1:1/v1/chat/completions"
    assert OpenAIBackend("http://h:1", "m").url("completions") == "http://h:1/v1/completions"


def test_eval_through_an_openai_server_sends_chat_messages(tmp_path):
    """A remote backend has no tokenizer: chat benchmarks go out as messages, MC ones are refused."""
    from harness_app.cli.eval import run_eval

    def boxed(n, body):
        status, headers, payload = ok_reply(body)
        payload["choices"][0]["message"]["content"] = "So the answer is \\boxed{10}."
        return status, headers, payload

    with serve(boxed) as (fake, url):
        run_eval(f"openai:{url}#student", "math500", 2, tmp_path / "run", backend=f"openai:{url}#student")
        with pytest.raises(HarnessError, match="log-likelihood benchmarks"):
            run_eval(
                f"openai:{url}#student", "truthfulqa_mc1", 1, tmp_path / "mc", backend=f"openai:{url}#student"
            )
    assert [r["path"] for r in fake.requests] == ["/v1/chat/completions"] * 2
    assert all(
        r["messages"][-1]["role"] == "user" and "\\boxed" in r["messages"][-1]["content"]
        for r in fake.requests
    )
    rows = [
        json.loads(line) for line in next((tmp_path / "run" / "eval").glob("*/samples_math500.jsonl")).open()
    ]
    assert [r["response"] for r in rows] == ["So the answer is \\boxed{10}."] * 2
    assert [r["completion_tokens"] for r in rows] == [7, 7]
