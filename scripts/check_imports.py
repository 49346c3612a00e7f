"""Prove the layering: `python scripts/check_imports.py` exits 1 and names every offending import.

Three layers (docs/architecture.md):
    library       harness.*  — models, backends, registry, checkers, data, stats, run layout, analysis
    training      cgd.*      — problems, probe, teachers, methods, train; may import the library
    application   cgd_harness.* — CLI, compare, report, gate; the only code that imports both

Rules: the library never imports training or application code; training never imports the
application; and no two packages (directories) import each other, function-local imports included.
Imports are read from the source (ast), so a cycle hidden inside a function still counts; `if
TYPE_CHECKING:` blocks are skipped (they never run).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "cgd", "cgd_harness")
APP = "cgd_harness"
RANK = {"library": 0, "training": 1, "application": 2}


def layer(module: str) -> str:
    if module == APP or module.startswith(APP + "."):
        return "application"
    return "training" if module.split(".")[0] == "cgd" else "library"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


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
    return module if known[module].name == "__init__.py" else module.rpartition(".")[0]


def problems() -> list[str]:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    found = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if RANK[layer(target)] > RANK[layer(name)]:
                found.append(f"layer: {name} ({layer(name)}) imports {target} ({layer(target)})")
    # Package-level cycles: a parent package importing its own subpackage is how packages are
    # assembled (cgd_harness.cli -> cgd_harness.cli.eval); only edges between unrelated directories count.
    edges: dict[str, set[str]] = defaultdict(set)
    witness: dict[tuple[str, str], str] = {}
    for name, targets in graph.items():
        a = package_of(name, known)
        for target in targets:
            b = package_of(target, known)
            if a != b and not b.startswith(a + ".") and not a.startswith(b + "."):
                edges[a].add(b)
                witness.setdefault((a, b), f"{name} -> {target}")
    # Top-level packages count as a whole too: harness, cgd and cgd_harness may not import each other.
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
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    print(f"{len(modules())} modules, {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
