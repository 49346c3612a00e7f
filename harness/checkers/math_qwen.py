"""A second math grader with the semantics of Qwen2.5-Math's evaluation (`math_equal`).

The Qwen2.5-Math / math-evaluation-harness grader compares two answer strings rather than two
parsed objects, and is more lenient than math-verify in some places and stricter in others, so
scores from papers that use it are only comparable when graded the same way. What it decides,
in order (`qwen_equal`), after both sides are normalised (`normalize_answer`):
1. equal as lower-case strings;
2. a gold choice letter (A-E) against the last stand-alone letter of the prediction;
3. both numbers (commas dropped, `%` meaning /100): equal within a relative tolerance of 1e-4,
   with the gold also tried as gold/100 and gold*100 (percent written either way);
4. equal once enclosing brackets and every `{}()` are dropped (so `(1, 2)` and `[1, 2]` differ
   only when one side keeps its brackets on purpose: a half-open interval stays an interval);
5. both tuples or intervals: same length, element by element; both matrices (pmatrix/bmatrix):
   same shape, cell by cell;
6. equations: both `a = b` -> equal as `lhs - rhs` up to sign; `x = 5` (a name of at most two
   characters) against a bare `5` compares the right-hand side;
7. symbolic: both sides parsed with sympy (LaTeX first, then plain expressions): equal,
   `simplify(a - b) == 0`, equal numerically within 1e-4, or matrices equal to 3 decimals.
Steps 5 and 6 decide on their own: a failed element-wise comparison is not retried symbolically.

Written from the behaviour Qwen2.5-Math's evaluation/grader.py and parser.py document; not the
same code. Deliberate differences: number words ("five") are not converted and MathQA's long
list of unit words is not stripped (neither occurs in MATH-style answers); a gold written as
`{a, b}` against a matrix prediction becomes the column it stands for.

Extraction: the last complete `\\boxed{}` (math.py's rule, one linear pass), else Minerva's
"final answer is $X$. I hope", else the text after the last "the answer is", else the last
number. Timeouts and workers are math.py's (`check_math(..., grader="qwen")`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.checkers.math_common import (
    NO_ANSWER,
    OK,
    PRED_MAX_CHARS,
    UNPARSABLE_GOLD,
    MathVerdict,
    extract_boxed,
    normalize_gold,
)

_REL_TOL = 1e-4
_MATRIX_DECIMALS = 3
_CHOICES = ("A", "B", "C", "D", "E")

# ---------------------------------------------------------------- extraction

_MINERVA = re.compile(r"final answer is \$(.*?)\$\. I hope", re.DOTALL)
_ANSWER_IS = "he answer is"
_NUMBER = re.compile(r"-?\d*\.?\d+")


def extract_qwen_answer(response: str) -> str:
    """The raw answer text the Qwen pipeline grades ("" when there is none)."""
    minerva = _MINERVA.search(response)
    if minerva:
        return minerva.group(1).strip()
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed
    if _ANSWER_IS in response:
        return response.rsplit(_ANSWER_IS, 1)[1].strip()
    if "final answer is" in response:
        return response.rsplit("final answer is", 1)[1].strip()
    numbers = _NUMBER.findall(response.replace(",", ""))
    return numbers[-1] if numbers else ""


# ---------------------------------------------------------------- normalisation

_TRAILING_TEXT = re.compile(r"\\text\{.*?\}$")
_TEXT = re.compile(r"\\text\{(.*?)\}")
_MBOX = re.compile(r"\\mbox\{.*?\}")
_ARRAY_BEGIN = re.compile(r"\\begin\{array\}\{.*?\}")
_VARIABLE_PREFIXES = ("x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to")
_TRAILING_ZEROS_INSIDE = re.compile(r"(\d+)\.0*([^\d])")
_TRAILING_ZEROS_END = re.compile(r"(\d+)\.0*$")
_BARE_SQRT = re.compile(r"\\sqrt(\w+)")
_INTEGER = re.compile(r"-?\d+")


def normalize_answer(text: str) -> str:
    """An answer string in the form both sides are compared in (Qwen's `strip_string` rules)."""
    s = str(text).strip().replace("\n", "").rstrip(".").replace("\\!", "")
    s = _ARRAY_BEGIN.sub(r"\\begin{pmatrix}", s).replace("\\end{array}", "\\end{pmatrix}")
    s = s.replace("bmatrix", "pmatrix").replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\{", "{").replace("\\}", "}")
    without_unit = _TRAILING_TEXT.sub("", s).strip()
    if without_unit:
        s = without_unit
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = _TEXT.sub(r"\1", s)
    for prefix in _VARIABLE_PREFIXES:
        s = s.replace(prefix, "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if len(s) > 2 and s[0] + s[-1] in ("{}", "()", "[]") and s[1:-1].isalnum():
        s = s[1:-1]
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("and", "").replace("\\mathbf", "")
    s = _MBOX.sub("", s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")  # the imaginary unit as engineers write it
    s = _TRAILING_ZEROS_INSIDE.sub(r"\1\2", s)
    s = _TRAILING_ZEROS_END.sub(r"\1", s)
    if s.startswith("."):
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _BARE_SQRT.sub(r"\\sqrt{\1}", s).replace(" ", "")
    return _slash_as_frac(_brace_fracs(s))


def _brace_fracs(s: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{7}` -> `\\frac{1}{7}`."""
    head, *rest = s.split("\\frac")
    out = [head]
    for part in rest:
        out.append("\\frac")
        if part.startswith("{"):
            out.append(part)
        elif len(part) < 2:
            return s
        elif part[1] == "{":
            out.append("{" + part[0] + "}" + part[1:])
        else:
            out.append("{" + part[0] + "}{" + part[1] + "}" + part[2:])
    return "".join(out)


def _slash_as_frac(s: str) -> str:
    """`3/4` -> `\\frac{3}{4}` when both sides are integers (or square roots)."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    if all("sqrt" in p or _INTEGER.fullmatch(p) for p in parts) and all(parts):
        return "\\frac{" + parts[0] + "}{" + parts[1] + "}"
    return s


# ---------------------------------------------------------------- comparison


def _as_number(s: str) -> float | None:
    s = s.replace(",", "")
    try:
        return float(s)
    except ValueError:
        pass
    if s.endswith("%"):
        s = s[:-1].removesuffix("\\")
        try:
            return float(s) / 100
        except ValueError:
            return None
    return None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL)


def _numbers_equal(pred: str, gold: str) -> bool:
    p, g = _as_number(pred), _as_number(gold)
    if p is None or g is None:
        return False
    return any(_close(p, candidate) for candidate in (g / 100, g, g * 100))


def _choice_letter(pred: str) -> str:
    cleaned = pred.strip("\n").rstrip("./").strip(" ").lstrip(":")
    letters = re.findall(r"\b([A-E])\b", cleaned.upper())
    return (letters[-1] if letters else cleaned.strip().strip(".")).rstrip("./")


def _wrapped(s: str, pair: str) -> bool:
    return s.startswith(pair[0]) and s.endswith(pair[1])


def _is_sequence(s: str) -> bool:
    return re.match(r"[(\[].+[)\]]", s) is not None


_MATRIX_BEGIN = ("\\begin{pmatrix}", "\\begin{bmatrix}")
_MATRIX_END = ("\\end{pmatrix}", "\\end{bmatrix}")


def _is_matrix(s: str) -> bool:
    return s.startswith(_MATRIX_BEGIN) and s.endswith(_MATRIX_END)


def _matrix_rows(s: str) -> list[list[str]]:
    body = s[len(_MATRIX_BEGIN[0]) : -len(_MATRIX_END[0])]
    return [row.strip().split("&") for row in body.split("\\\\") if row.strip()]


def _gold_as_column(gold: str) -> str:
    """A gold `{a, b}` read as the column vector a matrix prediction writes out."""
    groups = re.findall(r"\{.*,.*\}", gold)
    if not groups:
        return gold
    return ", ".join(
        "\\begin{pmatrix}" + g.strip("{}").replace(",", "\\\\") + "\\end{pmatrix}" for g in groups
    )


def _equation_difference(equation: str) -> str:
    lhs, rhs = equation.split("=")
    return f"{lhs.strip()} - ({rhs.strip()})"


def _short_equation(s: str) -> bool:
    return s.count("=") == 1 and len(s.split("=")[0].strip()) <= 2


def qwen_equal(pred: Any, gold: Any) -> bool:
    """Whether two normalised answer strings are equal under the rules in the module docstring."""
    if pred is None or gold is None:
        return False
    pred, gold = str(pred).strip(), str(gold).strip()
    if pred.lower() == gold.lower():
        return True
    if gold in _CHOICES and _choice_letter(pred) == gold:
        return True
    if _numbers_equal(pred, gold):
        return True
    if not pred:
        return False
    if "pmatrix" in pred and "pmatrix" not in gold:
        gold = _gold_as_column(gold)
    p, g = pred, gold
    if (_wrapped(p, "[]") and not _wrapped(g, "()")) or (_wrapped(p, "()") and not _wrapped(g, "[]")):
        p, g = p.strip("[]()"), g.strip("[]()")
    if re.sub(r"[{}()]", "", p).lower() == re.sub(r"[{}()]", "", g).lower():
        return True
    if _is_sequence(pred) and _is_sequence(gold):
        ps, gs = pred[1:-1].split(","), gold[1:-1].split(",")
        return len(ps) == len(gs) and all(qwen_equal(a, b) for a, b in zip(ps, gs))
    if _is_matrix(pred) and _is_matrix(gold):
        pr, gr = _matrix_rows(pred), _matrix_rows(gold)
        return len(pr) == len(gr) and all(
            len(a) == len(b) and all(qwen_equal(x, y) for x, y in zip(a, b)) for a, b in zip(pr, gr)
        )
    if pred.count("=") == 1 and gold.count("=") == 1:
        p_diff, g_diff = _equation_difference(pred), _equation_difference(gold)
        return _symbolic_equal(p_diff, g_diff) or _symbolic_equal(f"-({p_diff})", g_diff)
    if _short_equation(pred) and "=" not in gold:
        return qwen_equal(pred.split("=")[1], gold)
    if _short_equation(gold) and "=" not in pred:
        return qwen_equal(pred, gold.split("=")[1])
    return _symbolic_equal(pred, gold)


# sympy's parse_expr ends in eval(): a model's answer reaches it only when it is plain arithmetic
# (numbers, operators, one-letter names and a few functions), and it evaluates without builtins.
_PLAIN_FUNCTIONS = ("sqrt", "pi", "exp", "log", "sin", "cos", "tan")
_PLAIN_EXPRESSION = re.compile(
    r"(?:\d+(?:\.\d+)?|\.\d+|[+\-*/^(),\s]"
    r"|(?<![A-Za-z0-9.])(?:" + "|".join(_PLAIN_FUNCTIONS) + r"|[A-Za-z])(?![A-Za-z0-9]))*"
)


def _parse_plain(text: str) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    if "__" in text or not _PLAIN_EXPRESSION.fullmatch(text):
        raise ValueError("not plain arithmetic")
    names = {
        name: getattr(sympy, name)
        for name in ("Symbol", "Integer", "Float", "Rational", "E", "I", *_PLAIN_FUNCTIONS)
    }
    return parse_expr(text.replace("^", "**"), global_dict={"__builtins__": {}, **names})


def _to_sympy(s: str) -> Any:
    """A sympy object for s, or s itself when nothing parses it."""
    from latex2sympy2_extended import latex2sympy

    for text in dict.fromkeys((s.replace("\\\\", "\\"), s)):
        for parser in (latex2sympy, _parse_plain):
            try:
                return parser(text)
            except Exception:  # noqa: BLE001 - any parser failure means "try the next reading"
                continue
    return s


def _symbolic_equal(a_text: str, b_text: str) -> bool:
    from sympy import N, simplify

    a, b = _to_sympy(a_text), _to_sympy(b_text)
    checks = (
        lambda: str(a) == str(b) or a == b,
        lambda: a.equals(b) or simplify(a - b) == 0,
        lambda: abs(a.lhs - a.rhs).equals(abs(b.lhs - b.rhs)),
        lambda: _close(float(N(a)), float(N(b))),
        lambda: a.shape == b.shape and a.applyfunc(_round3).equals(b.applyfunc(_round3)),
    )
    for check in checks:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - sympy raises many types for "not comparable this way"
            continue
    return False


def _round3(x: Any) -> Any:
    return round(x, _MATRIX_DECIMALS)


# ---------------------------------------------------------------- verdict


def score_qwen(gold: Any, response: str | None) -> MathVerdict:
    """The verdict without a deadline; `check_math(..., grader="qwen")` adds one."""
    try:
        gold_text = normalize_answer(normalize_gold(gold))
    except ValueError:
        gold_text = ""
    if not gold_text:
        return MathVerdict(False, UNPARSABLE_GOLD, None)
    raw = extract_qwen_answer(response or "")
    pred = normalize_answer(raw) if raw else ""
    if not pred:
        return MathVerdict(False, NO_ANSWER, None)
    return MathVerdict(qwen_equal(pred, gold_text), OK, raw[:PRED_MAX_CHARS])
