"""report.html of a real `ci` compare run, rendered by headless Chromium: the findings, the main
table, the plots and the sample viewer are on the page, and the viewer's URL-hash filter shows
exactly the items the run's records say flipped. A screenshot is left in the run's report directory.

Skipped only where no Chromium is installed (.ci/run installs the Debian package when it can)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from itertools import permutations
from pathlib import Path

import pytest
from PIL import Image

from harness.rundata import HEADLINE_METRIC

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SECTIONS = [
    "findings",
    "results",
    "plots",
    "drift",
    "forgetting",
    "statistics",
    "compute",
    "samples",
    "config",
]
SCREENSHOT = "report-screenshot.png"


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip("no Chromium found (apt-get install chromium)")
    return found


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    # A fresh profile per call: concurrent runs must not share Chromium's profile lock. --no-sandbox:
    # CI runs as root, where Chromium refuses its sandbox.
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def dom(browser: str, page: Path, hash_: str = "") -> str:
    proc = _chromium(browser, "--dump-dom", page.as_uri() + hash_)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


class _Items(HTMLParser):
    """Ids of the viewer's rendered items, the section order, and what the viewer counted."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[str] = []
        self.sections: list[str] = []
        self.matches: str | None = None
        self.figures: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "article" and "item" in (a.get("class") or ""):
            self.items.append(a["data-id"])
        elif tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        elif tag == "p" and a.get("id") == "viewer-count":
            self.matches = a.get("data-matches")
        elif tag == "figure" and a.get("id"):
            self.figures.append(a["id"])


def parse(text: str) -> _Items:
    parser = _Items()
    parser.feed(text)
    return parser


def _verdicts(run: Path, label: str, task: str) -> dict[str, float]:
    """Straight from the samples file, not through the harness reader the page was built with."""
    path = run / "eval" / label / f"samples_{task}.jsonl"
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        value = record["metrics"].get(HEADLINE_METRIC[task])
        if value is not None:
            out[str(record.get("item_id", record.get("doc_id")))] = float(value)
    return out


def expected_flips(run: Path) -> tuple[str, str, str, list[str]]:
    """The (task, A, B) with the most items whose pass/fail differs, and those items in the viewer's
    order (ids in natural order: "2" before "10")."""
    labels = sorted(p.name for p in (run / "eval").iterdir() if (p / "results.json").exists())
    best = None
    for task in HEADLINE_METRIC:
        if not (run / "eval" / "base" / f"samples_{task}.jsonl").exists():
            continue
        verdicts = {label: _verdicts(run, label, task) for label in labels}
        for a, b in permutations(labels, 2):
            va, vb = verdicts[a], verdicts[b]
            flipped = [i for i in va if i in vb and (va[i] >= 0.5) != (vb[i] >= 0.5)]
            if best is None or len(flipped) > len(best[3]):
                best = (task, a, b, sorted(flipped, key=_natural))
    assert best is not None
    return best


def _natural(item: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", item)]


def test_page_has_findings_table_plots_and_viewer(compare_run, browser) -> None:
    base, _ = compare_run
    page = base / "report" / "report.html"
    text = dom(browser, page)
    parsed = parse(text)
    assert [s for s in parsed.sections if s in SECTIONS] == SECTIONS  # findings first, config last
    findings = text[text.index('id="findings"') : text.index('id="results"')]
    assert "H1" in findings and "CGD &gt; SFT" in findings and 'class="verdict' in findings
    results = text[text.index('id="results"') : text.index('id="plots"')]
    assert "math500" in results and "cgd" in results
    assert {"plot-scores", "plot-deltas", "plot-measures", "plot-loss"} <= set(parsed.figures)
    assert text.count("data:image/png;base64,") >= 4
    # The viewer ran: the first benchmark's first page is on the page, rendered by the script.
    assert parsed.matches is not None and int(parsed.matches) == len(parsed.items) > 0
    # Nothing is fetched: no resource names a network address (KaTeX's MathML names its namespace,
    # which is no fetch).
    assert not re.search(r'(?:src|href)="(?:https?:)?//|url\((?:https?:)?//', text)


def test_flip_filter_from_the_url_hash_shows_exactly_the_flipped_items(compare_run, browser) -> None:
    base, _ = compare_run
    task, a, b, flipped = expected_flips(base / "run")
    page = base / "report" / "report.html"
    parsed = parse(dom(browser, page, f"#task={task}&filter=flips&a={a}&b={b}"))
    assert parsed.matches == str(len(flipped))
    assert parsed.items == flipped[:25]
    everything = parse(dom(browser, page, f"#task={task}&filter=all&a={a}&b={b}"))
    assert len(everything.items) >= len(parsed.items)


def test_redacted_benchmark_shows_ids_and_letters_only(compare_run, browser) -> None:
    base, _ = compare_run
    text = dom(browser, base / "report" / "report.html", "#task=gpqa_diamond_cot&filter=all")
    viewer = text[text.index('id="viewer"') :]
    assert "redacted benchmark" in viewer
    assert 'class="response"' not in viewer.split("</section>")[0]
    assert 'details class="prompt"' not in viewer.split("</section>")[0]


def test_screenshot_is_saved_in_the_report_directory(compare_run, browser) -> None:
    base, _ = compare_run
    report = base / "report"
    shot = report / SCREENSHOT
    proc = _chromium(
        browser, "--window-size=1366,3000", f"--screenshot={shot}", (report / "report.html").as_uri()
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1366, 3000)
        # Not blank: the page's text and plots darken some pixels.
        assert image.convert("L").getextrema()[0] < 100


FRACTION = "\\frac{14}{3}"


def _math_run(root: Path) -> Path:
    """A run whose math500 items carry LaTeX in the gold, the prompt, the response and the answer."""
    from test_report import write_eval

    from harness.io import atomic_write_json

    run = root / "run"
    atomic_write_json(run / "config.json", {"git_revision": "abc1234", "seeds": [0], "methods": []})
    records = [
        {
            "task": "math500",
            "doc_id": i,
            "item_id": f"m{i}",
            "prompt": f"Compute $\\sqrt{{{i}}}$ and \\(x^2\\).",
            "response": f"So $x = \\frac{{{i}}}{{2}}$. The answer is \\boxed{{{FRACTION}}}.",
            "extracted": FRACTION,
            "gold": FRACTION,
            "metrics": {"exact_match": 1.0},
        }
        for i in range(3)
    ]
    write_eval(run, "base", {"math500": records})
    return run


class _Math(HTMLParser):
    """Counts KaTeX's fraction nodes inside rendered formulas, and where they sit."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.fractions = 0
        self.places: set[str] = set()

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        self.stack.append(" ".join(classes))
        if "mfrac" in classes and any("katex" in c.split() for c in self.stack):
            self.fractions += 1
            for place in ("gold", "answer", "response", "prompt"):
                if any(place in c.split() for c in self.stack):
                    self.places.add(place)

    def handle_endtag(self, tag):
        if self.stack and tag not in ("br", "img", "input", "meta", "link"):
            self.stack.pop()


def test_math_is_rendered_with_katex_and_toggles_back_to_source(tmp_path, browser) -> None:
    from harness_app.report.build import write_report

    write_report(_math_run(tmp_path), tmp_path / "report")
    page = tmp_path / "report" / "report.html"
    rendered = _Math()
    text = dom(browser, page, "#task=math500&filter=all")
    rendered.feed(text[text.index('id="viewer"') :])
    # 3 items: the gold, the extracted answer and the response's \\frac each typeset.
    assert rendered.fractions >= 3 * 3, rendered.fractions
    assert {"gold", "answer", "response"} <= rendered.places
    source = dom(browser, page, "#task=math500&filter=all&math=0")
    viewer = source[source.index('id="viewer"') :]
    assert 'class="katex' not in viewer.split("sample-data")[0]
    assert FRACTION in viewer.split("sample-data")[0]  # the LaTeX source, as text
