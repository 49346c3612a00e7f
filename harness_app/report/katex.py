"""KaTeX inside the self-contained report page: the sample viewer renders mathematics with it.

The files in katex/ are the npm registry's `katex` package (version and integrity hash in
katex/VERSION; scripts/vendor_katex.sh refreshes them), MIT-licensed: the page carries the license
text beside the script. Fonts are inlined as woff2 data URIs, so the page needs no network and no
file beside it. Only the woff2 sources are kept: every browser that runs the viewer reads woff2.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from importlib import resources

_FONT_SOURCES = re.compile(
    r'url\(fonts/(?P<name>KaTeX_[A-Za-z0-9-]+)\.woff2\) format\("woff2"\)'
    r'(?:,url\(fonts/[A-Za-z0-9_-]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\))*'
)


def _files():
    return resources.files("harness_app.report").joinpath("katex")


@cache
def style() -> str:
    """katex.min.css with every font as a data URI."""
    files = _files()

    def inline(match: re.Match) -> str:
        data = files.joinpath("fonts", f"{match['name']}.woff2").read_bytes()
        return f'url(data:font/woff2;base64,{base64.b64encode(data).decode("ascii")}) format("woff2")'

    css = _FONT_SOURCES.sub(inline, files.joinpath("katex.min.css").read_text(encoding="utf-8"))
    if "url(fonts/" in css:
        raise RuntimeError("katex.min.css names a font file this module does not inline")
    return css


@cache
def script() -> str:
    """katex.min.js, then its auto-render extension (which finds $...$ and \\(...\\) in text)."""
    files = _files()
    return "\n".join(
        files.joinpath(name).read_text(encoding="utf-8") for name in ("katex.min.js", "auto-render.min.js")
    )


def notice() -> str:
    """The license notice the MIT license asks to travel with the copy, as an HTML comment."""
    files = _files()
    version = files.joinpath("VERSION").read_text(encoding="utf-8").strip()
    license_text = files.joinpath("LICENSE").read_text(encoding="utf-8").strip().replace("--", "- -")
    return f"<!-- {version}\n{license_text}\n-->"
