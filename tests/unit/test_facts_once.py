"""Facts stated once (issue 31): run-directory paths only in harness/layout.py, one default model, one
alpha, the profile lists read off the profiles folder. Each test scans the packages' source, so a fact
restated somewhere else fails here."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from harness import layout
from harness.config import available_profiles
from harness.defaults import ALPHA, DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "cgd", "harness_app")
PLACEHOLDER = "PLACEHOLDER"


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _layout_names() -> tuple[set[str], set[str]]:
    """(file and folder names, name prefixes) of every path harness.layout defines, read off the module
    itself: its string constants, and its functions called with a placeholder."""
    paths = [v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)]
    for fn in vars(layout).values():
        if inspect.isfunction(fn) and fn.__module__ == layout.__name__:
            params = inspect.signature(fn).parameters.values()
            paths.append(fn(*(1 if p.annotation in (int, "int") else PLACEHOLDER for p in params)))
    names, prefixes = set(), set()
    for path in paths:
        for part in str(path).split("/"):
            part = part.replace("1", PLACEHOLDER) if part.startswith(("shard-", "step-")) else part
            if PLACEHOLDER in part:
                if prefix := part.split(PLACEHOLDER)[0]:
                    prefixes.add(prefix)
            elif part and "*" not in part:
                names.add(part)
    return names, prefixes


def _path_literals(tree: ast.AST, names: set[str], prefixes: set[str]) -> list[tuple[int, str]]:
    """String pieces used as a path: an operand of `/`, or the pattern/name of glob, joinpath,
    with_name or with_suffix; flagged when a component is a layout name or starts with a layout
    prefix. Also any literal `<layout folder>/<file>.<ext>`."""

    def pieces(node: ast.AST) -> list[ast.Constant]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node]
        if isinstance(node, ast.JoinedStr):
            return [v for v in node.values if isinstance(v, ast.Constant)]
        return []

    def bad(text: str) -> bool:
        parts = [p for p in re.split(r"[/*]", text) if p]
        return any(
            p in names or p.startswith(tuple(prefixes)) or p.endswith(layout.META_SUFFIX) for p in parts
        )

    used: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            used += pieces(node.left) + pieces(node.right)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("glob", "rglob", "joinpath", "with_name", "with_suffix", "removesuffix")
            and node.args
        ):
            used += pieces(node.args[0])
    hits = [(c.lineno, c.value) for c in used if bad(c.value)]
    folders = {
        p.split("/")[0]
        for p in (layout.TRAIN_PROBLEMS, layout.ATTEMPTS, layout.ANNOTATIONS, layout.UNCERTAINTY)
    }
    folders |= {layout.DATA, layout.TRAIN, layout.EVAL}
    shaped = re.compile(rf"^({'|'.join(map(re.escape, sorted(folders)))})/[\w.{{}}<>-]+\.(jsonl?|csv|md)$")
    hits += [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and shaped.match(node.value)
    ]
    return hits


# Paths that merely share a name with a run-directory file: a Hugging Face model directory's
# config.json (harness/models.py), and the report directory's files.
NOT_RUN_DIR = {
    ("harness/models.py", "config.json"),
}


def test_run_directory_paths_come_from_layout_only():
    names, prefixes = _layout_names()
    assert {"results.json", "manifest.json", "checkpoint", "shards"} <= names  # the scan reads layout
    assert {"samples_", "shard-", "step-", "timing_"} <= prefixes
    found = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "harness/layout.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for line, text in _path_literals(tree, names, prefixes):
            if (rel, text) not in NOT_RUN_DIR and not any(
                isinstance(n, ast.Constant) and id(n) in skip and n.lineno == line for n in ast.walk(tree)
            ):
                found.append(f"{rel}:{line}: {text!r}")
    assert not found, "run-directory paths outside harness/layout.py:\n" + "\n".join(found)


def test_the_scan_finds_a_literal_path():
    names, prefixes = _layout_names()
    tree = ast.parse(
        'a = run / "eval" / label / "results.json"\nb = d.glob("shard-*-of-*")\nc = f"{x}/samples_{t}.jsonl"\n'
        'd = "problems/val.jsonl"\ne = p / f"timing_{task}.jsonl"'
    )
    assert sorted(line for line, _ in _path_literals(tree, names, prefixes)) == [1, 1, 2, 4, 5]


def _restated(matches) -> list[str]:
    found = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "harness/defaults.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        found += [f"{rel}:{node.lineno}" for node in ast.walk(tree) if id(node) not in skip and matches(node)]
    return found


def test_the_default_model_is_named_once():
    """Only harness/defaults.py spells it; every other module reads DEFAULT_MODEL."""
    found = _restated(lambda node: isinstance(node, ast.Constant) and node.value == DEFAULT_MODEL)
    assert not found, "the default model restated in:\n" + "\n".join(found)


def _alpha_literal(node: ast.AST) -> bool:
    """A number given to something called alpha: a keyword, a parameter default or an assignment."""

    def is_alpha(value) -> bool:
        return isinstance(value, ast.Constant) and value.value == ALPHA

    if isinstance(node, ast.keyword):
        return bool(node.arg) and "alpha" in node.arg.lower() and is_alpha(node.value)
    if isinstance(node, ast.arguments):
        named = [*node.posonlyargs, *node.args]
        pairs = list(zip(named[len(named) - len(node.defaults) :], node.defaults))
        pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
        return any("alpha" in a.arg.lower() and is_alpha(d) for a, d in pairs)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [getattr(t, "id", getattr(t, "attr", "")) for t in targets]
        return any("alpha" in n.lower() for n in names) and is_alpha(node.value)
    if isinstance(node, ast.Call):  # typer.Option(0.05, "--alpha", ...) and setting(0.05, ...alpha...)
        flags = [a.value for a in node.args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        return bool(node.args) and is_alpha(node.args[0]) and any("alpha" in f for f in flags)
    return False


def test_alpha_is_set_once():
    found = _restated(_alpha_literal)
    assert not found, "alpha restated (read harness.defaults.ALPHA) in:\n" + "\n".join(found)


def test_the_restatement_scans_can_fail():
    model = ast.parse(f'def f(model="{DEFAULT_MODEL}"): pass')
    assert any(isinstance(n, ast.Constant) and n.value == DEFAULT_MODEL for n in ast.walk(model))
    for code in (
        f"def f(x, alpha={ALPHA}): pass",
        f"g(alpha={ALPHA})",
        f"ALPHA = {ALPHA}",
        f'typer.Option({ALPHA}, "--alpha")',
    ):
        assert any(_alpha_literal(n) for n in ast.walk(ast.parse(code))), code


def test_profile_help_names_every_profile_in_the_folder():
    from harness_app.cli.common import ProfileOpt

    folder = sorted(p.stem for p in (ROOT / "harness" / "profiles").glob("*.yaml"))
    assert folder == available_profiles() and "laptop" in folder
    assert all(name in ProfileOpt.help for name in folder), ProfileOpt.help
