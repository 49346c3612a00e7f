"""The CGD study's drift measure: critique-style answers. Critique fine-tuning teaches a model to
*review* solutions; the CGD paper's risk is that it keeps reviewing when asked to *solve* (verdict
lines instead of a final answer; hypothesis H3).

Importing this module adds the measure to the evaluation library's drift analysis
(`harness.drift.add_measure`), so every drift table, comparison, finding, plan, tracker summary and
items frame of the process has it. `harness_app` imports it, so every command does.
"""

from __future__ import annotations

import re

from harness.drift import ResponseMeasure, add_measure

_VERDICT = r"(?:correct|incorrect|wrong|right|flawed|valid|invalid|accurate|inaccurate)"
_REVIEWED = r"(?:solution|answer|response|reasoning|approach|proof|derivation|work)"
CRITIQUE_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        # "Conclusion: wrong", "**Conclusion:** right [END]"
        rf"^\W*conclusion\W*[:\-]\W*{_VERDICT}\b",
        # "The solution is incorrect", "the student's answer is not correct", "the answer was wrong"
        rf"\b(?:the|this|your|their|student'?s?|given|proposed|provided)\s+(?:\w+\s+)?{_REVIEWED}\s+"
        rf"(?:is|was|are|seems|appears)\s+(?:not\s+|mostly\s+|partially\s+|entirely\s+|completely\s+)?"
        rf"(?:to\s+be\s+)?{_VERDICT}\b",
        # "Let's review the solution", "Let us verify the given answer", "Let me check the student's steps"
        r"\blet(?:'s|\s+us|\s+me)\s+(?:review|verify|critique|evaluate|check|examine|analy[sz]e)\s+"
        r"(?:the|this|their|your|student'?s?)\s+(?:given\s+|proposed\s+|provided\s+|student'?s?\s+)?"
        r"(?:solution|response|steps|reasoning|work)\b",
        r"^\W*critique\W*:",
        # "Step 3 is incorrect", "step 2 was wrong"
        rf"\bstep\s+\d+\s+(?:is|was)\s+(?:not\s+)?{_VERDICT}\b",
        # "The error is in step 2", "the mistake lies in the second step"
        r"\b(?:error|mistake)\s+(?:is|lies|occurs)\s+in\s+(?:the\s+\w+\s+step|step\s+\d+)",
    )
)


def is_critique(text: str) -> bool:
    """True when the answer reviews a solution (verdict lines) instead of producing one."""
    return any(p.search(text) for p in CRITIQUE_PATTERNS)


CRITIQUE_STYLE = add_measure(
    ResponseMeasure(
        name="critique",
        label="critique-style answers",
        heading="critique-style",
        column="critique_style",
        detect=is_critique,
    )
)
