"""Prove the layering: `python scripts/check_imports.py` exits 1 and names every offending import.

Five layers (docs/architecture.md), each importing only those below it:
    engine        cpu_engine.*  — the CPU engine and its C kernels; imports no other package
    library       harness.*     — models, backends, benchmarks, checkers, data, stats, run layout, analysis
    training      training.*    — the trainer, its fast step and kernels, its config, selection, trackers
    study         cgd.*         — the CGD paper: problems, probe, teachers, methods, hypotheses, its stages
    application   harness_app.* — the `harness` command, compare, report, gate

Rules: no import against the layers; outside the engine, its names come from `cpu_engine` itself (its
one interface), never from its submodules; no two packages (directories) import each other, and no two
modules either (a cycle through any number of modules), function-local imports included. A C source's
`#include "..."` of another package's file is an import of that file (the training kernels include the
engine's simd.h). Imports are read from the source (ast), so a cycle hidden inside a function still
counts; `if TYPE_CHECKING:` blocks are skipped (they never run).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cpu_engine", "harness", "training", "cgd", "harness_app")
ENGINE, APP = "cpu_engine", "harness_app"
RANK = {"engine": 0, "library": 1, "training": 2, "study": 3, "application": 4}
C_SUFFIXES = (".c", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top == APP:
        return "application"
    return {ENGINE: "engine", "training": "training", "cgd": "study"}.get(top, "library")


def modules() -> dict[str, Path]:
    """Every module of the packages by dotted name; a C file keeps its suffix (training.train_kernels.c)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix == ".py":
                name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                found[name.removesuffix(".__init__")] = path
            elif path.suffix in C_SUFFIXES:
                found[".".join(path.relative_to(ROOT).parts)] = path
    return found


def includes(path: Path, known: dict[str, Path]) -> set[str]:
    """The project files a C source includes with `#include "..."`, by module name."""
    by_path = {p.resolve(): name for name, p in known.items()}
    found = (by_path.get((path.parent / rel).resolve()) for rel in INCLUDE.findall(path.read_text("utf-8")))
    return {name for name in found if name}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:  # harness.io.read_json -> harness.io
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def package_of(module: str, known: dict[str, Path]) -> str:
    """The directory a module lives in, as a dotted name (a package's __init__ belongs to it)."""
    path = known[module]
    if path.suffix in C_SUFFIXES:
        return ".".join(path.parent.relative_to(ROOT).parts)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan). A package and its own submodules are
    one unit here: an __init__ that re-exports them is how a package is assembled."""
    adj = {
        a: sorted(b for b in bs if not b.startswith(a + ".") and not a.startswith(b + "."))
        for a, bs in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # iterative would need more code; the graph is a few hundred deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return sorted(out)


def problems() -> list[str]:
    known = modules()
    graph = {
        name: includes(path, known) if path.suffix in C_SUFFIXES else imports(name, path, known)
        for name, path in known.items()
    }
    found = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if RANK[layer(target)] > RANK[layer(name)]:
                found.append(f"layer: {name} ({layer(name)}) imports {target} ({layer(target)})")
            elif (
                layer(name) != "engine"
                and target.startswith(ENGINE + ".")
                and known[target].suffix not in C_SUFFIXES
            ):
                found.append(f"interface: {name} imports {target}; import its names from {ENGINE} itself")
    # Package-level cycles: a parent package importing its own subpackage is how packages are
    # assembled (harness_app.cli -> harness_app.cli.eval); only edges between unrelated directories count.
    edges: dict[str, set[str]] = defaultdict(set)
    witness: dict[tuple[str, str], str] = {}
    for name, targets in graph.items():
        a = package_of(name, known)
        for target in targets:
            b = package_of(target, known)
            if a != b and not b.startswith(a + ".") and not a.startswith(b + "."):
                edges[a].add(b)
                witness.setdefault((a, b), f"{name} -> {target}")
    # Top-level packages count as a whole too: no two of them may import each other.
    for name, targets in graph.items():
        for target in targets:
            a, b = name.split(".")[0], target.split(".")[0]
            if a != b:
                edges[a].add(b)
                witness.setdefault((a, b), f"{name} -> {target}")
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a < b and a in edges.get(b, ()):
                found.append(f"cycle: {a} <-> {b} ({witness[(a, b)]}; {witness[(b, a)]})")
    for group in module_cycles(graph):
        found.append(f"module cycle: {' <-> '.join(group)}")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    print(f"{len(modules())} modules, {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
