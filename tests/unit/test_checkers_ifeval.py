"""IFEval checker: hand-written cases, equivalence with lm-eval's ifeval task, no NLTK download,
and the GPT-4 reference responses scored against lm-eval and the IFEval paper."""

from __future__ import annotations

import itertools
import json
import os
import random
import string
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import langdetect
import nltk
import pytest
from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

from harness import paths

# First: importing the checker installs punkt_tab and forbids downloads; lm-eval's ifeval
# modules below would call nltk.download() at import time without it.
from harness.checkers.ifeval import IFEvalVerdict, build_instruction, check_ifeval, loose_variants
from harness.errors import HarnessError
from harness.io import read_jsonl
from harness.nltk_setup import ensure_punkt_tab, punkt_tab_files

from lm_eval.tasks.ifeval import utils as lm_utils  # isort: skip
from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT  # isort: skip

CASES = read_jsonl(Path(__file__).parents[1] / "cases" / "ifeval.jsonl")
MR_SMITH = "Mr. Smith went to Washington. He arrived at 5 p.m. today."
MR_SMITH_SENTENCES = ["Mr. Smith went to Washington.", "He arrived at 5 p.m. today."]

# GPT-4 in Zhou et al. 2023, "Instruction-Following Evaluation for Large Language Models"
# (arXiv:2311.07911), results table, in percent.
PAPER_GPT4 = {
    "prompt_level_strict": 76.89,
    "inst_level_strict": 83.57,
    "prompt_level_loose": 79.30,
    "inst_level_loose": 85.37,
}
# What this checker (and lm-eval, with the same letters drawn) gives on those responses. The loose
# pair differs from the paper's by one prompt and one instruction: see
# test_paper_numbers_are_one_outcome_of_the_reference_letter_draws and docs/parity.md.
MEASURED_GPT4 = {
    "prompt_level_strict": 76.89,
    "inst_level_strict": 83.57,
    "prompt_level_loose": 79.48,
    "inst_level_loose": 85.49,
}


def lm_eval_verdict(prompt, response, instruction_ids, kwargs) -> IFEvalVerdict:
    doc = {"key": 0, "prompt": prompt, "instruction_id_list": list(instruction_ids)}
    out = lm_utils.process_results({**doc, "kwargs": list(kwargs)}, [response])
    return IFEvalVerdict(
        prompt_level_strict=out["prompt_level_strict_acc"],
        inst_level_strict=tuple(out["inst_level_strict_acc"]),
        prompt_level_loose=out["prompt_level_loose_acc"],
        inst_level_loose=tuple(out["inst_level_loose_acc"]),
    )


def accuracies(verdicts: list[IFEvalVerdict]) -> dict[str, float]:
    """The four IFEval metrics in percent, aggregated as lm-eval does (instruction level is
    pooled over all instructions, not averaged per prompt)."""
    out = {}
    for level in ("strict", "loose"):
        prompts = [getattr(v, f"prompt_level_{level}") for v in verdicts]
        insts = [ok for v in verdicts for ok in getattr(v, f"inst_level_{level}")]
        out[f"prompt_level_{level}"] = 100 * sum(prompts) / len(prompts)
        out[f"inst_level_{level}"] = 100 * sum(insts) / len(insts)
    return out


# --- hand-written cases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{n:02d}-{c['instruction_id']}" for n, c in enumerate(CASES, 1)]
)
def test_case(case):
    args = (case["prompt"], case["response"], [case["instruction_id"]], [case["kwargs"]])
    verdict = check_ifeval(*args)
    expected = (case["strict"], case["loose"])
    assert (verdict.prompt_level_strict, verdict.prompt_level_loose) == expected, case["note"]
    assert (verdict.inst_level_strict, verdict.inst_level_loose) == ((expected[0],), (expected[1],))
    assert verdict == lm_eval_verdict(*args)


def test_every_instruction_id_has_a_pass_and_a_fail_case():
    ids = set(INSTRUCTION_DICT)
    if (root := paths.data_dir()) is not None:
        rows = read_jsonl(root / "ifeval" / "input_data.jsonl")
        assert {i for row in rows for i in row["instruction_id_list"]} == ids
    assert len(ids) == 25
    passing = {c["instruction_id"] for c in CASES if c["strict"]}
    failing = {c["instruction_id"] for c in CASES if not c["loose"]}
    assert sorted(ids - passing) == []
    assert sorted(ids - failing) == []
    assert sum(c["loose"] and not c["strict"] for c in CASES) >= 10
    assert not [c["note"] for c in CASES if c["strict"] and not c["loose"]]  # loose ⊇ strict


# --- API details ------------------------------------------------------------------------------


def test_loose_variants_are_the_papers_eight():
    response = "Sure:\n**Bold** body\nBye*"
    assert loose_variants(response) == (
        response,
        "**Bold** body\nBye*",
        "Sure:\n**Bold** body",
        "**Bold** body",
        "Sure:\nBold body\nBye",
        "Bold body\nBye",
        "Sure:\nBold body",
        "Bold body",
    )


def test_empty_response_fails_everything():
    ids = ["punctuation:no_comma", "keywords:forbidden_words", "startend:quotation"]
    kwargs = [{}, {"forbidden_words": ["rock"]}, {}]
    for response in ("", " \n\t"):
        verdict = check_ifeval("Describe a coast.", response, ids, kwargs)
        assert verdict == IFEvalVerdict(False, (False,) * 3, False, (False,) * 3)
        assert verdict == lm_eval_verdict("Describe a coast.", response, ids, kwargs)


def test_null_kwargs_are_dropped_like_the_hub_rows():
    hub_style = {"num_words": 5, "relation": "at least", "keyword": None, "num_highlights": None}
    clean = {"num_words": 5, "relation": "at least"}
    ids = ["length_constraints:number_words"]
    for response in ("one two three four five", "one two"):
        verdict = check_ifeval("p", response, ids, [hub_style])
        assert verdict == check_ifeval("p", response, ids, [clean])
        assert verdict == lm_eval_verdict("p", response, ids, [hub_style])


def test_multi_instruction_prompt_levels():
    ids = ["punctuation:no_comma", "keywords:existence"]
    kwargs = [{}, {"keywords": ["tide"]}]
    verdict = check_ifeval("p", "Sure, here:\nThe tide rolls in.", ids, kwargs)
    assert verdict.inst_level_strict == (False, True)
    assert verdict.prompt_level_strict is False
    assert verdict.inst_level_loose == (True, True)
    assert verdict.prompt_level_loose is True


@pytest.mark.parametrize(
    "ids, kwargs",
    [
        (["no:such_instruction"], [{}]),
        (["punctuation:no_comma"], []),
        ([], []),
        (["length_constraints:number_words"], [{"num_words": 5, "bogus": 1}]),
    ],
    ids=["unknown-id", "kwargs-length", "no-instructions", "unknown-kwarg"],
)
def test_bad_items_raise_harness_error(ids, kwargs):
    with pytest.raises(HarnessError):
        check_ifeval("p", "text", ids, kwargs)


def test_underspecified_instruction_is_deterministic_and_keeps_global_random():
    # '#' is not a letter, so lm-eval draws a random one; ours must be the same on every call.
    kwargs = {"letter": "#", "let_frequency": 4, "let_relation": "at least"}
    state = random.getstate()
    built = [build_instruction("keywords:letter_frequency", kwargs, "p") for _ in range(5)]
    drawn = {instruction.get_instruction_args()["letter"] for instruction in built}
    assert random.getstate() == state
    assert len(drawn) == 1


# --- NLTK data --------------------------------------------------------------------------------


@pytest.fixture
def own_nltk_path(monkeypatch):
    """Installing into tmp_path registers it with NLTK; undo that after the test."""
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    monkeypatch.setenv("NLTK_DATA", "")


def test_punkt_tab_install_matches_the_bundled_model(tmp_path, own_nltk_path):
    import punkt

    assert ensure_punkt_tab(tmp_path) == tmp_path
    assert str(tmp_path) in nltk.data.path
    assert os.environ["NLTK_DATA"] == str(tmp_path)

    model_dir = nltk.data.find("tokenizers/punkt_tab/english/", paths=[str(tmp_path)])
    params = load_punkt_params(model_dir)
    bundled = punkt.load_model("english")
    assert params.abbrev_types == bundled.abbrev_types
    assert params.collocations == bundled.collocations
    assert params.sent_starters == bundled.sent_starters
    assert dict(params.ortho_context) == bundled.ortho_context
    assert PunktSentenceTokenizer(params).tokenize(MR_SMITH) == MR_SMITH_SENTENCES


def test_punkt_tab_install_is_idempotent_and_repairs(tmp_path, own_nltk_path):
    ensure_punkt_tab(tmp_path)
    model = tmp_path / "tokenizers" / "punkt_tab" / "english"
    inode = model.stat().st_ino
    ensure_punkt_tab(tmp_path)
    assert model.stat().st_ino == inode  # untouched when already right
    assert nltk.data.path.count(str(tmp_path)) == 1
    assert os.environ["NLTK_DATA"] == str(tmp_path)

    (model / "abbrev_types.txt").write_text("truncated")
    ensure_punkt_tab(tmp_path)
    expected = punkt_tab_files()
    assert {p.name: p.read_text(encoding="utf-8") for p in model.iterdir()} == expected
    assert not [p.name for p in model.parent.iterdir() if p.name != "english"]  # no leftovers


def test_punkt_tab_install_refuses_a_model_nltk_misreads(tmp_path, monkeypatch, own_nltk_path):
    import harness.nltk_setup as nltk_setup

    broken = {**punkt_tab_files(), "abbrev_types.txt": ""}  # without "mr" and "p.m"
    monkeypatch.setattr(nltk_setup, "punkt_tab_files", lambda language="english": broken)
    with pytest.raises(HarnessError, match="misreads"):
        ensure_punkt_tab(tmp_path)
    assert not (tmp_path / "tokenizers" / "punkt_tab" / "english").exists()


def test_default_tokenizer_finds_the_installed_model():
    assert nltk.sent_tokenize(MR_SMITH) == MR_SMITH_SENTENCES


def test_download_is_refused_after_setup():
    with pytest.raises(HarnessError, match="never downloads"):
        nltk.download("punkt_tab")


SPY = """
import json, sys, nltk
attempts = []
def spy(*args, **kwargs):
    attempts.append(repr(args))
    raise RuntimeError("download attempted")
nltk.download = spy
"""


def run_fresh(code: str, tmp_path: Path) -> dict:
    """Run `code` in a new interpreter (so lm-eval's import-time code runs again) whose NLTK
    search path holds no punkt data; `code` prints one JSON object last."""
    env = {**os.environ, "HARNESS_HOME": str(tmp_path / "harness"), "HOME": str(tmp_path)}
    env["NLTK_DATA"] = ""
    proc = subprocess.run(
        [sys.executable, "-c", SPY + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lm_eval_import_would_download_without_setup(tmp_path):
    """The hazard the setup removes: lm-eval downloads punkt_tab at import when it is missing."""
    out = run_fresh(
        """
        try:
            nltk.data.find("tokenizers/punkt_tab")
            print(json.dumps({"preinstalled": True}))
            sys.exit(0)
        except LookupError:
            pass
        try:
            import lm_eval.tasks.ifeval.instructions_util
        except RuntimeError:
            pass
        print(json.dumps({"preinstalled": False, "attempts": attempts}))
        """,
        tmp_path,
    )
    if out["preinstalled"]:
        pytest.skip("NLTK already finds punkt_tab outside the harness on this machine")
    assert out["attempts"] == ["('punkt_tab',)"]


def test_checker_import_never_downloads(tmp_path):
    out = run_fresh(
        f"""
        from harness.checkers.ifeval import check_ifeval
        from harness.errors import HarnessError
        verdict = check_ifeval("p", {MR_SMITH!r}, ["length_constraints:number_sentences"],
                               [{{"num_sentences": 3, "relation": "less than"}}])
        try:
            nltk.download("punkt_tab")
            refused = False
        except HarnessError:
            refused = True
        print(json.dumps({{"attempts": attempts, "ok": verdict.prompt_level_strict,
                          "refused": refused, "nltk_data": __import__("os").environ["NLTK_DATA"]}}))
        """,
        tmp_path,
    )
    nltk_data = tmp_path / "harness" / "nltk_data"
    assert out == {"attempts": [], "ok": True, "refused": True, "nltk_data": str(nltk_data)}
    assert (nltk_data / "tokenizers" / "punkt_tab" / "english" / "ortho_context.tab").is_file()


# --- real data: GPT-4's responses from the IFEval paper ------------------------------------


def draws_randomly(instruction_id: str, kwargs: dict) -> bool:
    """Whether lm-eval fills part of this instruction from `random` (an invalid or missing
    parameter), which makes its own verdict change from run to run."""
    state = random.getstate()
    try:
        seen = set()
        for seed in range(8):
            random.seed(seed)
            instruction = INSTRUCTION_DICT[instruction_id](instruction_id)
            instruction.build_description(**{k: v for k, v in kwargs.items() if v})
            seen.add(json.dumps(instruction.get_instruction_args(), sort_keys=True))
        return len(seen) > 1
    finally:
        random.setstate(state)


@pytest.fixture(scope="module")
def gpt4():
    root = paths.data_dir()
    if root is None:
        pytest.skip("HARNESS_DATA_DIR is not set: no IFEval data or GPT-4 reference responses")
    items = read_jsonl(root / "ifeval" / "input_data.jsonl")
    refs = read_jsonl(root / "ifeval" / "reference_responses_gpt4_20231107.jsonl")
    by_prompt = {row["prompt"]: row["response"] for row in refs}
    # One prompt's text differs slightly between the two files; both are in the same order.
    responses = [by_prompt.get(item["prompt"], refs[n]["response"]) for n, item in enumerate(items)]
    assert len(items) == len(refs) == 541
    assert sum(item["prompt"] not in by_prompt for item in items) == 1

    # For lm-eval, pin the parameters it would otherwise draw at random to the ones our checker
    # drew, so both sides judge the same instruction and can be compared item by item.
    pinned, random_draws = [], []
    for item in items:
        kwargs = []
        for instruction_id, kw in zip(item["instruction_id_list"], item["kwargs"]):
            if draws_randomly(instruction_id, kw):
                kw = build_instruction(instruction_id, kw, item["prompt"]).get_instruction_args()
                random_draws.append((item["key"], instruction_id))
            kwargs.append(kw)
        pinned.append(kwargs)
    return items, responses, pinned, random_draws


def compare_with_lm_eval(items, responses, pinned):
    ours, theirs = [], []
    for item, response, kwargs in zip(items, responses, pinned):
        args = (item["prompt"], response, item["instruction_id_list"])
        ours.append(check_ifeval(*args, item["kwargs"]))
        theirs.append(lm_eval_verdict(*args, kwargs))
    differing = [item["key"] for item, a, b in zip(items, ours, theirs) if a != b]
    assert differing == []
    return ours, theirs


def test_gpt4_reference_matches_lm_eval_and_paper(gpt4, capsys):
    items, responses, pinned, random_draws = gpt4
    # Keys 1122 and 1129 ask for the "letter" '#' and '!', which lm-eval replaces at random.
    assert [key for key, _ in random_draws] == [1122, 1129]

    ours, theirs = compare_with_lm_eval(items, responses, pinned)
    measured = accuracies(ours)
    assert measured == accuracies(theirs)
    with capsys.disabled():
        print("\nIFEval, GPT-4 reference responses (541 prompts): ours = lm-eval | paper | diff")
        for name, value in measured.items():
            paper = PAPER_GPT4[name]
            print(f"  {name:20s} {value:6.2f} | {paper:6.2f} | {value - paper:+5.2f}")
    assert {name: round(value, 2) for name, value in measured.items()} == MEASURED_GPT4


def test_matches_lm_eval_on_wrapped_gpt4_responses(gpt4):
    """The same responses with a chatty first and last line, so the loose variants do the work."""
    items, responses, pinned, _ = gpt4
    wrapped = [f"Sure, here is my answer:\n{r}\n*Hope this helps!*" for r in responses]
    ours, _ = compare_with_lm_eval(items, wrapped, pinned)
    strict, loose = accuracies(ours)["prompt_level_strict"], accuracies(ours)["prompt_level_loose"]
    assert loose > strict


def letter_pass_sets(item: dict, response: str, j: int) -> tuple[set[str], set[str]]:
    """The letters with which instruction `j` of `item` (a letter_frequency) passes the strict
    pass and the loose pass. The reference draws from string.ascii_letters and lower-cases the
    draw, so each of these 26 letters has probability 1/26."""
    strict, loose = set(), set()
    for letter in string.ascii_lowercase:
        kwargs = [dict(kw, letter=letter) if n == j else kw for n, kw in enumerate(item["kwargs"])]
        verdict = check_ifeval(item["prompt"], response, item["instruction_id_list"], kwargs)
        if verdict.inst_level_strict[j]:
            strict.add(letter)
        if verdict.inst_level_loose[j]:
            loose.add(letter)
    return strict, loose


def test_paper_numbers_are_one_outcome_of_the_reference_letter_draws(gpt4):
    """Why loose is 79.48/85.49 here and 79.30/85.37 in the paper (docs/parity.md).

    Keys 1122 and 1129 ask for the "letter" '#' and '!'. The reference (google-research's code
    as published, and lm-eval's copy) replaces a non-letter with a random letter, unseeded, and
    draws afresh in the strict pass and again in the loose pass: four independent draws. Their
    16 outcomes give 9 sets of numbers. The paper's is reached only when both prompts fail the
    loose pass and exactly one passes the strict pass, so in the paper's run one prompt passed
    strict and failed loose, which this checker (one draw per instruction for both passes) never
    does. The project's numbers are the most likely set under the reference's draws.
    """
    items, responses, _, _ = gpt4
    verdicts = [
        check_ifeval(it["prompt"], r, it["instruction_id_list"], it["kwargs"])
        for it, r in zip(items, responses)
    ]
    at = {item["key"]: n for n, item in enumerate(items)}
    draws = {}
    for key in (1122, 1129):
        n = at[key]
        j = items[n]["instruction_id_list"].index("keywords:letter_frequency")
        draws[key] = (j, *letter_pass_sets(items[n], responses[n], j))
        # The prompt's other instruction passes in both passes, so the letter decides the prompt.
        v, others = verdicts[n], [i for i in range(len(items[n]["instruction_id_list"])) if i != j]
        assert others and all(v.inst_level_strict[i] and v.inst_level_loose[i] for i in others)
    # 1122's response is one line and has no '*', and 1129's other variants only drop text, so
    # in both the loose pass passes with the same letters as the strict pass.
    assert sorted(draws[1122][1]) == sorted(draws[1122][2]) == list("abdefilmnorsty")
    assert set(string.ascii_lowercase) - draws[1129][1] == set("bjkqxz")
    assert draws[1129][2] == draws[1129][1]
    # The letters this checker draws: 'v' fails 1122, 'h' passes 1129, in both passes.
    drawn = {
        key: build_instruction(
            "keywords:letter_frequency", items[at[key]]["kwargs"][j], ""
        ).get_instruction_args()["letter"]
        for key, (j, _, _) in draws.items()
    }
    assert drawn == {1122: "v", 1129: "h"}

    outcomes = {}  # (1122 strict, 1122 loose, 1129 strict, 1129 loose) -> (numbers, probability)
    for bits in itertools.product((False, True), repeat=4):
        trial, probability = list(verdicts), Fraction(1)
        for key, (strict_ok, loose_ok) in zip((1122, 1129), (bits[:2], bits[2:])):
            j, strict_letters, loose_letters = draws[key]
            for ok, letters in ((strict_ok, strict_letters), (loose_ok, loose_letters)):
                p = Fraction(len(letters), 26)
                probability *= p if ok else 1 - p
            v = trial[at[key]]
            inst_strict = tuple(strict_ok if i == j else ok for i, ok in enumerate(v.inst_level_strict))
            inst_loose = tuple(loose_ok if i == j else ok for i, ok in enumerate(v.inst_level_loose))
            trial[at[key]] = IFEvalVerdict(all(inst_strict), inst_strict, all(inst_loose), inst_loose)
        numbers = {name: round(value, 2) for name, value in accuracies(trial).items()}
        outcomes[bits] = (numbers, probability)

    assert outcomes[(False, False, True, True)][0] == MEASURED_GPT4  # the letters drawn here
    paper = {bits: float(p) for bits, (numbers, p) in outcomes.items() if numbers == PAPER_GPT4}
    assert {bits: round(p, 4) for bits, p in paper.items()} == {
        (False, False, True, False): 0.0378,  # 1129 passes strict only; 1122 fails both
        (True, False, False, False): 0.0132,  # 1122 passes strict only; 1129 fails both
    }
    assert round(sum(paper.values()), 3) == 0.051
    by_numbers = {}
    for numbers, p in outcomes.values():
        key = tuple(numbers.values())
        by_numbers[key] = by_numbers.get(key, 0) + p
    assert len(by_numbers) == 9
    assert max(by_numbers, key=by_numbers.get) == tuple(MEASURED_GPT4.values())
    assert round(float(by_numbers[tuple(MEASURED_GPT4.values())]), 3) == 0.230

    # Counting '#' and '!' literally (no random letter) passes both prompts in both passes.
    assert responses[at[1122]].count("#") == 4 and responses[at[1129]].count("!") >= 6
    assert outcomes[(True, True, True, True)][0] == {
        "prompt_level_strict": 77.08,
        "inst_level_strict": 83.69,
        "prompt_level_loose": 79.67,
        "inst_level_loose": 85.61,
    }


def test_gpt4_verdicts_do_not_depend_on_the_langdetect_seed(gpt4, monkeypatch):
    """The reference leaves langdetect unseeded; this checker seeds it. On these responses no
    verdict of the 95 instructions that call langdetect moves with the seed."""
    items, responses, _, _ = gpt4
    detecting = {"language:response_language", "change_case:english_capital", "change_case:english_lowercase"}
    subset = [(it, r) for it, r in zip(items, responses) if detecting & set(it["instruction_id_list"])]
    assert sum(i in detecting for it, _ in subset for i in it["instruction_id_list"]) == 95

    def verdicts():
        return [check_ifeval(it["prompt"], r, it["instruction_id_list"], it["kwargs"]) for it, r in subset]

    seeded = verdicts()
    ambiguous = "ok ja nein si bueno"
    found = {}
    for seed in (1, 2, 3):
        monkeypatch.setattr(langdetect.DetectorFactory, "seed", seed)
        found[seed] = str(langdetect.detect_langs(ambiguous))
        assert verdicts() == seeded, seed
    assert len(set(found.values())) > 1  # the seed does reach langdetect
