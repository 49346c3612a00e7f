"""The application layer: the `harness` command, `compare`, the report and the gate.

The only code that imports both the evaluation library (`harness.*`) and the training package
(`cgd.*`); neither of those imports anything from here (scripts/check_imports.py checks it).
"""

import cgd.critique_style  # noqa: F401  (adds the study's drift measure to every report, tracker, frame)
from harness_app.frames import comparisons_df, findings_df

__all__ = ["comparisons_df", "findings_df"]
