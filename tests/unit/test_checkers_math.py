import json
import re
import signal
import threading
import time
from pathlib import Path

import pytest

import harness.checkers.math as math_checker
from harness.checkers.math import (
    STATUSES,
    MathVerdict,
    check_many,
    check_math,
    extract_boxed,
    normalize_gold,
)

CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "cases" / "math.jsonl").read_text().splitlines()
    if line.strip()
]


def _case_id(index: int, case: dict) -> str:
    return f"{index:03d}-" + re.sub(r"\W+", "-", case["note"])[:60].strip("-")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(i, c) for i, c in enumerate(CASES)])
def test_math_case(case):
    verdict = check_math(case["gold"], case["response"])
    assert verdict.status == case.get("status", "ok")
    assert verdict.correct == case["correct"]
    if "pred" in case:
        assert verdict.pred == case["pred"]


def test_case_file_covers_enough_and_documents_limitations():
    assert len(CASES) >= 70
    for case in CASES:
        if case.get("known_limitation"):
            assert case["human_correct"] != case["correct"], case["note"]


@pytest.mark.parametrize(
    "text, boxed",
    [
        (r"so \boxed{5}.", "5"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{\left\{ x \right\}}", r"\left\{ x \right\}"),
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        (r"\boxed{\boxed{7}}", "7"),
        (r"\boxed{1}+\boxed{2} is not one box", "2"),
        (r"\fbox{8}", "8"),
        (r"$\boxed 9$", "9"),
        (r"\boxed {3}", "3"),
        (r"\boxed{4} and then \boxed{12", "4"),
        (r"\boxed{}", ""),
        ("no box here", None),
        (r"\boxedx{3}", None),
    ],
)
def test_extract_boxed(text, boxed):
    assert extract_boxed(text) == boxed


@pytest.mark.parametrize(
    "text, run",
    [
        (r"\boxed{1}, \boxed{2}", ["1", "2"]),
        (r"\boxed{1} and \boxed{2} and \boxed{3}", ["1", "2", "3"]),
        (r"$\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}$", ["(2, 2)", "(6, 2)"]),
        (r"\boxed{1} no no no no no \boxed{2}", ["2"]),
        (r"\boxed{7} then much later, after all: \boxed{7}", ["7"]),
        (r"\boxed{1}\boxed{1}", ["1"]),
        (r"\boxed{\boxed{1}, \boxed{2}}", [r"\boxed{1}, \boxed{2}"]),
        (r"\boxed 3, \boxed{4}", ["3", "4"]),
        (r"\boxed{4} and \boxed{12", ["4"]),
        ("no box", []),
    ],
)
def test_extract_boxed_run(text, run):
    assert math_checker.extract_boxed_run(text) == run


def test_box_extraction_stays_linear():
    # Every box joins the run; a quadratic rescan would take minutes here.
    text = ", ".join(rf"\boxed{{{i}}}" for i in range(200_000))
    started = time.perf_counter()
    run = math_checker.extract_boxed_run(text)
    assert len(run) == 200_000 and run[-1] == "199999"
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize(
    "gold, text",
    [
        (27.0, "27"),
        (-1.0, "-1"),
        (2.5, "2.5"),
        (7, "7"),
        ("025", "25"),
        ("000", "0"),
        ("27.0", "27"),
        (r"\frac{14}{3}", r"\frac{14}{3}"),
        (r" \left( 3, \frac{\pi}{2} \right) ", r"\left( 3, \frac{\pi}{2} \right)"),
    ],
)
def test_normalize_gold(gold, text):
    assert normalize_gold(gold) == text


@pytest.mark.parametrize("gold", [None, True, float("nan")])
def test_normalize_gold_rejects_non_answers(gold):
    with pytest.raises(ValueError):
        normalize_gold(gold)
    assert check_math(gold, r"\boxed{1}").status == "unparsable_gold"


def test_check_many_in_workers_keeps_input_order():
    # More items than the in-process batch limit, so this goes through worker processes.
    answers = [i if i % 3 else i + 1 for i in range(math_checker._IN_PROCESS_BATCH + 1)]
    items = [(str(i), rf"so \boxed{{{answer}}}") for i, answer in enumerate(answers)]
    verdicts = check_many(items, workers=2)
    assert [v.pred for v in verdicts] == [str(a) for a in answers]
    assert [v.correct for v in verdicts] == [i == a for i, a in enumerate(answers)]
    assert {v.status for v in verdicts} == {"ok"}


def test_check_many_empty():
    assert check_many([]) == []


def test_overdue_worker_is_killed_and_replaced(monkeypatch):
    # A negative margin makes the parent give up long before the worker's own timer would
    # report: that is the path a worker stuck in C code takes.
    from harness.checkers import workers

    monkeypatch.setattr(workers, "_KILL_MARGIN_S", -4.0)
    started = []
    original_init = workers._Worker.__init__

    def counting_init(self, *args):
        started.append(self)
        original_init(self, *args)

    monkeypatch.setattr(workers._Worker, "__init__", counting_init)
    items = [("5", r"\boxed{9^{9^{9^{9^{9}}}}}"), ("7", r"\boxed{7}")]
    verdicts = check_many(items, timeout_s=6.0, workers=1)
    assert verdicts == [MathVerdict(False, "timeout", None), MathVerdict(True, "ok", "7", boxed=True)]
    assert len(started) == 2


def test_check_math_off_the_main_thread_uses_a_worker():
    verdicts = []
    thread = threading.Thread(target=lambda: verdicts.append(check_math("0.5", r"\boxed{\frac12}")))
    thread.start()
    thread.join()
    assert verdicts == [MathVerdict(True, "ok", r"\frac12", boxed=True)]


def test_check_math_restores_the_callers_alarm():
    def callers_handler(signum, frame):
        raise AssertionError("the caller's alarm must not fire during this test")

    previous = signal.signal(signal.SIGALRM, callers_handler)
    signal.setitimer(signal.ITIMER_REAL, 600)
    try:
        assert check_math("2", r"\boxed{2}").correct
        assert signal.getsignal(signal.SIGALRM) is callers_handler
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _pathological_responses() -> dict[str, str]:
    megabyte = 1_000_000
    return {
        "frac-300-deep": r"\boxed{" + r"\frac{1}{" * 300 + "2" + "}" * 300 + "}",
        "megabyte-of-x": "x" * megabyte,
        "megabyte-sum-after-cue": "The answer is " + "12345+" * (megabyte // 6),
        "megabyte-sum-in-box": r"\boxed{" + "1+" * (megabyte // 2) + "1}",
        "megabyte-of-braces": r"\boxed{" + "{" * (megabyte // 2) + "}" * (megabyte // 2) + "}",
        "tower-left": r"\boxed{9^9^9^9^9}",
        "tower-right": r"\boxed{9^{9^{9^{9^{9}}}}}",
        "tower-plain": "The final answer is 9**9**9**9**9",
        "factorial-million": r"\boxed{1000000!}",
        "factorial-googol": r"\boxed{(10^{100})!}",
        "five-thousand-boxes": " ".join(rf"\boxed{{{i}}}" for i in range(5000)),
    }


def test_pathological_inputs_return_a_verdict():
    responses = _pathological_responses()
    verdicts = check_many([("5", r) for r in responses.values()], timeout_s=0.5)
    for name, verdict in zip(responses, verdicts):
        assert verdict.status in {"timeout", "ok", "no_answer"}, name
        assert verdict.correct is False, name


def test_each_pathological_verdict_comes_back_within_its_timeout_plus_a_margin():
    """Hang-proofness, not speed: a stuck worker is killed and replaced, so each verdict has a bound.

    The margin covers killing and respawning a worker on a loaded CI box; prints the times (-s).
    """
    timeout_s, margin_s = 1.0, 10.0
    for name, response in _pathological_responses().items():
        started = time.perf_counter()
        verdict = check_math("5", response, timeout_s=timeout_s)
        elapsed = time.perf_counter() - started
        print(f"{name}: {verdict.status} in {elapsed:.2f} s")
        assert verdict.correct is False, name
        assert elapsed < timeout_s + margin_s, (name, elapsed)


def test_check_math_sends_pathological_input_to_a_worker():
    verdict = check_math("5", r"\boxed{(10^{100})!}", timeout_s=1.0)
    assert verdict.status in STATUSES
    assert verdict.correct is False
