"""The self-contained HTML report: one file that opens from disk with no network.

Order is what a reader wants first: the findings, the main table, the plots, then the detail
(summary, drift, forgetting, statistics, graders, compute), the sample viewer, and the resolved
config last, collapsed. Tables are inline, plots are embedded as base64 PNG shown at the size their
fonts were set for (plots.display_width), and the viewer's data is one JSON blob rendered a page at
a time by viewer.js.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field

from harness_app.report import katex, plots, viewer
from harness_app.report.tables import Table, to_html

_STYLE = """
:root { --ok: #1a7f37; --bad: #b42318; --muted: #5c5c5c; --line: #d0d7de; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1.5rem 2rem;
  max-width: 80rem; color: #1f2328; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; margin-top: 2.2rem; }
nav { position: sticky; top: 0; background: #fff; padding: 0.4rem 0; border-bottom: 1px solid var(--line);
  font-size: 0.9rem; z-index: 2; }
nav a { margin-right: 0.9rem; color: #0969da; text-decoration: none; }
.meta { color: var(--muted); margin-top: 0; }
.findings td, .findings th { text-align: left; }
.findings { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 0.3rem 1rem 0.8rem; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.88rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.55rem; text-align: right; vertical-align: top; }
th { background: #f6f8fa; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; }
caption { caption-side: bottom; font-size: 0.8rem; color: var(--muted); padding-top: 0.3rem; text-align: left; }
.verdict { font-weight: 600; white-space: nowrap; }
.v-supported, .v-better, .v-non-inferior, .v-equivalent { color: var(--ok); }
.v-contradicted, .v-worse { color: var(--bad); }
.v-inconclusive, .v-not-tested { color: var(--muted); }
figure { margin: 1rem 0 1.8rem; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: var(--muted); }
pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.viewer-controls { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center;
  position: sticky; top: 2.1rem; background: #fff; padding: 0.4rem 0; z-index: 1; }
.viewer-controls select, .viewer-controls button { font-size: 0.9rem; }
.viewer-count { color: var(--muted); }
article.item { border: 1px solid var(--line); border-radius: 6px; margin: 0.8rem 0; padding: 0.5rem 0.8rem; }
article.item header { margin-bottom: 0.3rem; }
.models { display: grid; gap: 0.6rem; overflow-x: auto; }
.model { border-top: 3px solid var(--line); padding-top: 0.2rem; min-width: 0; }
.model.sel-a { border-top-color: #0969da; }
.model.sel-b { border-top-color: #8250df; }
.model h4 { margin: 0.2rem 0; font-size: 0.95rem; }
.model pre.response { white-space: pre-wrap; word-break: break-word; max-height: 22rem; overflow-y: auto; margin: 0.3rem 0; }
.answer { font-size: 0.85rem; word-break: break-word; }
.badge { display: inline-block; font-size: 0.75rem; font-weight: 600; border-radius: 1rem; padding: 0 0.5rem;
  margin-left: 0.3rem; border: 1px solid currentColor; }
.badge.ok { color: var(--ok); } .badge.bad { color: var(--bad); } .badge.flag { color: #9a6700; }
.badge.none, .muted { color: var(--muted); }
details.prompt pre { white-space: pre-wrap; max-height: 18rem; }
"""


@dataclass(frozen=True)
class Plot:
    name: str  # the PNG's file name in the report directory
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Samples:
    data: dict  # viewer.sample_data(run)


Part = Table | str | Plot | Samples


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    parts: list[Part] = field(default_factory=list)
    collapsed: str = ""  # a summary line: the parts go inside a closed <details>


def _css_class(value: str) -> str:
    return "v-" + "-".join(value.lower().split())


def _table(table: Table, multiline: tuple[str, ...] = ()) -> str:
    """to_html, with verdict cells classed for colour and `multiline` columns split at '; '."""
    if "verdict" not in table.columns and not multiline:
        return f'<div class="table-wrap">{to_html(table)}</div>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for r, row in enumerate(table.rows):
        cells = []
        for c, cell in enumerate(row):
            name = table.columns[c]
            text = html.escape(cell)
            if name in multiline:
                text = "<br>".join(html.escape(part) for part in cell.split("; "))
            if table.is_bold(r, c) and cell:
                text = f"<b>{text}</b>"
            if name == "verdict":
                cells.append(f'<td class="verdict {_css_class(cell)}">{text}</td>')
            else:
                cells.append(f'<td class="text">{text}</td>' if name in multiline else f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )


def _plot(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    caption = f"<figcaption>{html.escape(plot.caption)}</figcaption>" if plot.caption else ""
    return (
        f'<figure id="plot-{html.escape(plot.name.removesuffix(".png"))}">'
        f'<img alt="{html.escape(plot.caption or plot.name)}" width="{plots.display_width(plot.png)}" '
        f'src="data:image/png;base64,{data}">{caption}</figure>\n'
    )


def _samples(samples: Samples) -> str:
    return (
        '<div id="viewer"></div>\n'
        f'<script type="application/json" id="sample-data">{viewer.embed_json(samples.data)}</script>\n'
    )


def _part(part: Part) -> str:
    if isinstance(part, Table):
        return _table(part, ("evidence",))
    if isinstance(part, Plot):
        return _plot(part)
    if isinstance(part, Samples):
        return _samples(part)
    return f"<p>{html.escape(part)}</p>"


def render_page(
    title: str,
    meta: str,
    config: dict,
    sections: list[Section],
) -> str:
    """A page of titled sections, a navigation bar to each, and the resolved config last."""
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
        f'<nav>{nav}<a href="#config">Config</a></nav>',
    ]
    has_viewer = has_math = False
    for s in sections:
        inner = "".join(_part(p) for p in s.parts)
        has_viewer |= any(isinstance(p, Samples) for p in s.parts)
        has_math |= any(t.get("math") for p in s.parts if isinstance(p, Samples) for t in p.data["tasks"])
        if s.collapsed:
            inner = f"<details><summary>{html.escape(s.collapsed)}</summary>{inner}</details>"
        css = ' class="findings"' if s.id == "findings" else ""
        body.append(f'<section id="{s.id}"{css}><h2>{html.escape(s.title)}</h2>\n{inner}</section>')
    body.append(
        '<section id="config"><h2>Config</h2><details><summary>Resolved config</summary><pre>'
        + html.escape(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False, default=str))
        + "</pre></details></section>"
    )
    script = f"<script>{viewer.script()}</script>" if has_viewer else ""
    # KaTeX only where the viewer shows a math benchmark: it is most of a small page's bytes.
    math_style = f"<style>{katex.style()}</style>" if has_viewer and has_math else ""
    if has_viewer and has_math:
        script = f"{katex.notice()}\n<script>{katex.script()}</script>\n{script}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{math_style}</head>\n<body>\n"
        + "\n".join(body)
        + f"\n{script}\n</body></html>\n"
    )
