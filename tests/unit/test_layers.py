"""The layering holds (scripts/check_imports.py): engine < library < training < study < application,
each importing only the layers below it, and no two packages or modules import each other."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_imports.py"


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
    assert any(p.startswith("layer: harness.lib (library) imports cgd.train (study)") for p in found)
    assert any(p.startswith("cycle: cgd <-> harness") for p in found)


def _tree(tmp_path, monkeypatch, files: dict[str, str]):
    """A project of the five packages with `files` (path -> text) in it; the checker pointed at it."""
    checker = _checker()
    for package in checker.PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    return checker.problems()


def test_a_c_include_across_packages_is_an_import(tmp_path, monkeypatch):
    found = _tree(
        tmp_path,
        monkeypatch,
        {
            "cpu_engine/simd.h": "",
            "training/kernels.c": '#include <math.h>\n#include "../cpu_engine/simd.h"\n',  # training -> engine
            "cpu_engine/attend.c": '#include "simd.h"\n#include "../harness/shared.h"\n',
            "harness/shared.h": "",
        },
    )
    assert found == ["layer: cpu_engine.attend.c (engine) imports harness.shared.h (library)"]


def test_training_knows_no_study_and_the_study_no_application(tmp_path, monkeypatch):
    found = _tree(
        tmp_path,
        monkeypatch,
        {
            "training/trainer.py": "from cgd import methods\n",
            "cgd/methods.py": "def f():\n    from harness_app import report\n",
            "harness_app/report.py": "",
            "cgd/train.py": "from training import trainer\n",  # allowed: study -> training
        },
    )
    assert "layer: training.trainer (training) imports cgd.methods (study)" in found
    assert "layer: cgd.methods (study) imports harness_app.report (application)" in found
    assert not any(p.startswith("layer: cgd.train ") for p in found)


def test_the_engine_imports_no_other_package_and_is_used_through_its_interface(tmp_path, monkeypatch):
    found = _tree(
        tmp_path,
        monkeypatch,
        {
            "cpu_engine/native.py": "def f():\n    from harness import paths\n",
            "harness/hf.py": "import cpu_engine\nfrom cpu_engine import native\n",
            "training/fused.py": "from cpu_engine.native import f\n",
        },
    )
    assert "layer: cpu_engine.native (engine) imports harness (library)" in found
    assert "interface: harness.hf imports cpu_engine.native; import its names from cpu_engine itself" in found
    assert (
        "interface: training.fused imports cpu_engine.native; import its names from cpu_engine itself"
        in found
    )


def test_a_module_cycle_inside_one_package_is_found(tmp_path, monkeypatch):
    found = _tree(
        tmp_path,
        monkeypatch,
        {
            "harness/checkers/__init__.py": "from harness.checkers import math\n",  # a re-export: no cycle
            "harness/checkers/math.py": "from harness.checkers import math_qwen\n",
            "harness/checkers/math_qwen.py": "def f():\n    from harness.checkers.math import g\n",
            "harness/a.py": "from harness import b\n",
            "harness/b.py": "from harness import c\n",
            "harness/c.py": "import harness.a\n",
        },
    )
    assert found == [
        "module cycle: harness.a <-> harness.b <-> harness.c",
        "module cycle: harness.checkers.math <-> harness.checkers.math_qwen",
    ]


def test_the_engine_builds_where_the_library_keeps_its_home(monkeypatch, tmp_path):
    # cpu_engine cannot import harness.paths, so it restates the home's variable and default.
    from cpu_engine import native
    from harness.paths import harness_home

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert native.cache_dir() == harness_home() / "native"
    monkeypatch.delenv("HARNESS_HOME")
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path / "user")
    assert native.cache_dir() == harness_home() / "native"
