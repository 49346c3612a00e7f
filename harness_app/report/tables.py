"""One table model, rendered to Markdown, CSV, LaTeX and HTML, so every format shows the same cells."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
}


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise
    caption: str = ""

    def is_bold(self, r: int, c: int) -> bool:
        return (r, c) in self.bold


def to_markdown(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    out = [line(table.columns), "|" + "|".join(["---"] * len(table.columns)) + "|"]
    for r, row in enumerate(table.rows):
        out.append(
            line([f"**{cell}**" if table.is_bold(r, c) and cell else cell for c, cell in enumerate(row)])
        )
    return "\n".join(out) + "\n"


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    spec = "l" + "r" * (len(table.columns) - 1)
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    for r, row in enumerate(table.rows):
        cells = [
            rf"\textbf{{{tex_escape(cell)}}}" if table.is_bold(r, c) and cell else tex_escape(cell)
            for c, cell in enumerate(row)
        ]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if table.caption:
        out.append(rf"\caption{{{tex_escape(table.caption)}}}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for r, row in enumerate(table.rows):
        cells = "".join(
            f"<td><b>{html.escape(cell)}</b></td>"
            if table.is_bold(r, c) and cell
            else f"<td>{html.escape(cell)}</td>"
            for c, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"
