"""The self-contained HTML report: every table inline and every plot embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import json

from harness.report.tables import Table, to_html

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { caption-side: bottom; font-size: 0.8rem; color: #555; padding-top: 0.3rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
img { max-width: 100%; }
"""


def _image(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>\n'


def render_page(
    title: str,
    run_id: str,
    git_revision: str,
    config: dict,
    sections: list[tuple[str, list[Table | str | tuple[str, bytes]]]],
) -> str:
    """A page of titled sections; each part is a Table, a paragraph of text, or a (name, png) image."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Run <code>{html.escape(run_id)}</code> · git revision <code>{html.escape(git_revision)}</code></p>",
        "<details><summary>Resolved config</summary><pre>"
        + html.escape(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False, default=str))
        + "</pre></details>",
    ]
    for heading, parts in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        for part in parts:
            if isinstance(part, Table):
                body.append(to_html(part))
            elif isinstance(part, tuple):
                body.append(_image(*part))
            else:
                body.append(f"<p>{html.escape(part)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
