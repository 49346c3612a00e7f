"""How much of the training target a critique hands over: the leakage statistics of a critique dataset.

CGD trains the student to write ŷ given (x, y', c). When c already states the final answer or quotes
ŷ, the loss mostly rewards copying from the context, not reasoning. Two measures, for any teacher:

- answer stated: the critique contains an expression equal to the gold answer under the math
  checker (math-verify, harness/checkers/math.py): a \\boxed{} answer, a math span or its right-hand
  side, or a bare number in the prose. A critique that mentions the gold's value for another reason
  (a small integer also given in the question) counts too, so this is an upper bound.
- coverage: the share of ŷ's tokens inside some 6-gram of ŷ that also occurs in c. Tokens are
  words, LaTeX commands and single symbols (`tokens`), the same for every teacher and model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NGRAM = 6
# Longer spans are derivations, not answers, and only slow math-verify down.
MAX_CANDIDATE_CHARS = 120
TOKEN = re.compile(r"\\[A-Za-z]+|\w+|[^\w\s]")
MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)
BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# A number in prose; step and list markers ("Step 2:", "3. ") are not statements of a value.
BARE_NUMBER = re.compile(r"(?<![\w.\\^_])-?\d+(?:\.\d+)?(?:/\d+)?(?![\w])")
LIST_MARKER = re.compile(r"(?im)^\s*(?:step\s+)?\d+\s*[.):]|\bstep\s+\d+")
# Spellings that differ between a gold and its restatement without changing the value.
_COSMETIC = re.compile(r"\s+|\\left|\\right|\\!|\\,|\\;|\\ |\$|\.$")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text or "")


def ngram_coverage(target: str, context: str, n: int = NGRAM) -> float | None:
    """Share of target's tokens covered by n-grams that also occur in context; None for no tokens."""
    tgt, ctx = tokens(target), tokens(context)
    if not tgt:
        return None
    seen = {tuple(ctx[i : i + n]) for i in range(len(ctx) - n + 1)}
    covered = [False] * len(tgt)
    for i in range(len(tgt) - n + 1):
        if tuple(tgt[i : i + n]) in seen:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(tgt)


def _braced(text: str, open_at: int) -> str | None:
    """Content of the group whose `{` is at open_at, or None when it never closes."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1 : i]
    return None


def answer_candidates(text: str) -> list[str]:
    """Every expression of `text` that could be a statement of a final answer, in text order."""
    found = []
    for m in BOX.finditer(text):
        content = _braced(text, m.end() - 1)
        if content is not None:
            found.append(content)
    prose = text
    for m in MATH_SPAN.finditer(text):
        span = next(g for g in m.groups() if g is not None)
        found.append(span)
        if "=" in span:
            found.append(span.rsplit("=", 1)[1])
        prose = prose.replace(m.group(0), " ", 1)
    prose = LIST_MARKER.sub(" ", prose)
    found += BARE_NUMBER.findall(prose)
    cleaned = (c.strip().rstrip(".,;") for c in found)
    return list(dict.fromkeys(c for c in cleaned if c and len(c) <= MAX_CANDIDATE_CHARS))


def _cosmetic(text: str) -> str:
    return _COSMETIC.sub("", text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))


def states_answer_many(pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (gold, text): does the text state the gold answer (see the module doc)?"""
    from harness.checkers.math import check_many, normalize_gold

    stated = [False] * len(pairs)
    asks: dict[tuple[str, str], list[int]] = {}
    for i, (gold, text) in enumerate(pairs):
        gold_text = normalize_gold(gold)
        for cand in answer_candidates(text or ""):
            if _cosmetic(cand) == _cosmetic(gold_text):
                stated[i] = True
                break
            asks.setdefault((gold_text, cand), []).append(i)
    todo = [(key, rows) for key, rows in asks.items() if not all(stated[i] for i in rows)]
    verdicts = check_many([(gold, f"\\boxed{{{cand}}}") for (gold, cand), _ in todo])
    for (_, rows), verdict in zip(todo, verdicts):
        if verdict.correct:
            for i in rows:
                stated[i] = True
    return stated


def leakage_stats(rows: Sequence[dict]) -> dict:
    """The leakage statistics of annotated rows (answer, critique, refined), for dataset metadata."""
    from harness.stats import clopper_pearson, score_interval

    rows = [r for r in rows if r.get("critique") is not None]
    stated = states_answer_many([(r["answer"], r["critique"]) for r in rows]) if rows else []
    coverage = [c for r in rows if (c := ngram_coverage(r.get("refined") or "", r["critique"])) is not None]
    out: dict = {"n": len(rows), "ngram": NGRAM, "answer_stated": None, "coverage": None}
    if rows:
        ci = clopper_pearson(sum(stated), len(rows))
        out["answer_stated"] = {"count": sum(stated), **_interval(ci)}
    if coverage:
        ci = score_interval(coverage)
        ordered = sorted(coverage)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        out["coverage"] = {"median": round(median, 4), **_interval(ci)}
    return out


def _interval(ci) -> dict:
    return {
        "n": ci.n,
        "mean": round(ci.mean, 4),
        "low": round(ci.low, 4),
        "high": round(ci.high, 4),
        "method": ci.method,
    }
