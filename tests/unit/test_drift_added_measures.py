"""Drift measures a study adds (`harness.drift.add_measure`): a library-only user has none; the CGD
study's critique-style measure (cgd/critique_style.py) is added by importing it, and the application
(`harness_app`, what the `harness` command runs) reaches the report and the tracker with it.

The processes here start fresh: in this test session the study is imported already."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import make_run

from cgd.critique_style import CRITIQUE_STYLE
from harness import drift
from harness.errors import HarnessError

# What a user of the library sees, first without the study, then after importing it.
_SEEN = """
import json, sys
import harness
from harness import drift, frames
from harness.rundata import RunData

run = RunData(sys.argv[1])

def seen():
    rows = drift.format_drift(run)
    return {
        "names": list(drift.measure_names()),
        "applicable": list(drift.applicable_measures("math500")),
        "cft_math500": next(r.added for r in rows if (r.task, r.model) == ("math500", "cft")),
        "measured": sorted({c.quantity for c in drift.changes_vs_base(run) if not c.is_score}),
        "frame_columns": [c for c in harness.items_df(run).columns if not c.startswith("config.")],
    }

out = {"library": seen(), "study_imported": sorted(m for m in sys.modules if m.split(".")[0] == "cgd")}
import cgd.critique_style
out["study"] = seen()
print(json.dumps(out))
"""

_TRACKED = """
import json, sys
from harness.rundata import RunData
from harness_app.tracking import eval_scalars

print(json.dumps(eval_scalars(RunData(sys.argv[1]), "cft")))
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("added"))


@pytest.fixture(scope="module")
def seen(run: Path) -> dict:
    return json.loads(_python(_SEEN, str(run)))


def test_a_library_only_user_gets_drift_rows_without_the_study_measure(seen: dict) -> None:
    assert seen["study_imported"] == []
    library = seen["library"]
    assert library["names"] == ["parseable", "length", "ifeval_format"]
    assert library["applicable"] == ["parseable", "length"]
    assert library["cft_math500"] == {}
    assert library["measured"] == ["length", "parseable"]
    assert "critique_style" not in library["frame_columns"]


def test_importing_the_study_adds_its_measure_everywhere(seen: dict) -> None:
    study = seen["study"]
    assert study["names"] == ["parseable", "critique", "length", "ifeval_format"]
    assert study["applicable"] == ["parseable", "critique", "length"]
    assert study["cft_math500"]["critique"] > 0.4  # cft's synthetic answers are 60 % critiques
    assert study["measured"] == ["critique", "length", "parseable"]
    gold = study["frame_columns"].index("gold")
    assert study["frame_columns"][gold + 1 : gold + 3] == ["critique_style", "no_answer"]


def test_the_harness_command_reports_the_study_measure(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    _python("from harness_app.cli import main; main()", "report", str(run), "-o", str(out))
    rows = {(r["task"], r["model"]): r for r in csv.DictReader((out / "drift.csv").open())}
    assert float(rows["math500", "cft"]["critique_pct"]) > 40
    assert float(rows["math500", "base"]["critique_pct"]) == 0
    assert "| critique-style % |" in (out / "drift.md").read_text()
    assert "critique-style answers on math500" in (out / "findings.md").read_text()


def test_the_tracker_summary_has_the_study_measure(run: Path) -> None:
    scalars = json.loads(_python(_TRACKED, str(run)))
    assert scalars["eval/math500/drift/critique"] > 0.4
    tags = [t for t in scalars if t.startswith("eval/math500/drift/")]
    assert tags == [f"eval/math500/drift/{m}" for m in ("parseable", "critique", "length_tokens")]


def test_a_measure_name_in_use_is_refused() -> None:
    assert drift.add_measure(CRITIQUE_STYLE) is CRITIQUE_STYLE  # the same measure again: once
    for name in ("critique", "length", "ifeval_format"):
        other = drift.ResponseMeasure(name, "x", "x", "x", lambda text: False)
        with pytest.raises(HarnessError, match=f"drift measure '{name}' exists already"):
            drift.add_measure(other)
    assert [m.name for m in drift.added_measures()] == ["critique"]
