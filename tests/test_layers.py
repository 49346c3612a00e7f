"""The layering holds: the library never imports training or application code, training never
imports the application, and no two packages import each other (scripts/check_imports.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_imports.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_layer_violation_and_no_package_cycle():
    assert _checker().problems() == []


def test_the_checker_sees_a_function_local_import(tmp_path, monkeypatch):
    checker = _checker()
    (tmp_path / "harness").mkdir()
    (tmp_path / "cgd").mkdir()
    (tmp_path / "harness" / "__init__.py").write_text("")
    (tmp_path / "cgd" / "__init__.py").write_text("")
    (tmp_path / "harness" / "lib.py").write_text("def f():\n    from cgd import train\n")
    (tmp_path / "cgd" / "train.py").write_text("from harness import lib\n")
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    found = checker.problems()
    assert any(p.startswith("layer: harness.lib (library) imports cgd.train (training)") for p in found)
    assert any(p.startswith("cycle: cgd <-> harness") for p in found)
