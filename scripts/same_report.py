"""Check that two runs of one config wrote the same report: `python scripts/same_report.py RUN_A RUN_B`.

A refactor that must not change behaviour is checked by running `harness compare` on the same
config before and after it and comparing every report file and every per-item record byte for byte,
after masking only what must differ between two runs: the run's name, the git revision and the
measured wall times (training's wall_seconds column). Exit 0 when identical, 1 with the differing
files listed otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REVISION = re.compile(r"\b[0-9a-f]{40}(\+dirty)?\b")
WALL_COLUMN = "wall_seconds"


def _mask_table_column(text: str, column: str) -> str:
    """Blank one column of every Markdown, CSV or HTML table whose header names it."""
    out, index, sep = [], None, None
    for line in text.splitlines(keepends=True):
        for candidate in ("|", ","):
            cells = line.split(candidate)
            if column in (c.strip() for c in cells):
                index, sep = [c.strip() for c in cells].index(column), candidate
                break
        else:
            if index is not None and sep in line and line.strip():
                cells = line.split(sep)
                if len(cells) > index and not set(cells[index].strip()) <= set("-:"):
                    cells[index] = " ? "
                    line = sep.join(cells)
            elif not line.strip():
                index = None
        out.append(line)
    return "".join(out)


def _mask_html_compute(text: str) -> str:
    """The page's compute table: the wall-time cell (the fourth) of each body row."""

    def mask_rows(table: re.Match) -> str:
        return re.sub(r"(<tr><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>)[^<]*(</td>)", r"\1?\2", table[0])

    return re.sub(r"<caption>Compute per trained model.*?</table>", mask_rows, text, flags=re.S)


def normalised(path: Path, run: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix not in {".md", ".csv", ".html", ".tex", ".json", ".jsonl", ".txt"}:
        return data
    text = data.decode("utf-8").replace(str(run.resolve()), "<run>").replace(run.name, "<run>")
    text = REVISION.sub("<revision>", text)
    if path.name.startswith("compute"):
        text = _mask_table_column(text, WALL_COLUMN)
    if path.suffix == ".html":
        text = _mask_html_compute(text)
    return text.encode()


def compared_files(run: Path) -> set[Path]:
    report = {p.relative_to(run) for p in (run / "report").rglob("*") if p.is_file()}
    items = {p.relative_to(run) for p in (run / "eval").rglob("samples_*") if p.is_file()}
    return report | items


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: same_report.py RUN_A RUN_B", file=sys.stderr)
        return 2
    a, b = (Path(x) for x in argv)
    files_a, files_b = compared_files(a), compared_files(b)
    differ = sorted(str(p) for p in files_a ^ files_b)
    same = 0
    for rel in sorted(files_a & files_b):
        if normalised(a / rel, a) == normalised(b / rel, b):
            same += 1
        else:
            differ.append(str(rel))
    print(f"{same} of {len(files_a | files_b)} files identical")
    for rel in differ:
        print(f"differs: {rel}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
