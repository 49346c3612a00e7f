"""Profiles (YAML files with documented defaults), `--set key=value` overrides, validation.

A profile may `extends:` another; keys are merged depth-first. The smoke profile defines every key,
so it is the schema: an override of a key it does not have is an error that lists the valid keys,
and a value must have the type of the default it replaces.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

SCHEMA_PROFILE = "smoke"


def available_profiles() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("harness.profiles").iterdir()
        if p.name.endswith(".yaml")
    )


def _read_profile(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text(encoding="utf-8")
    elif name_or_path in available_profiles():
        text = (
            resources.files("harness.profiles").joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        )
    else:
        raise HarnessError(
            f"unknown profile {name_or_path!r}: choose one of {', '.join(available_profiles())} "
            "or give a .yaml file"
        )
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"profile {name_or_path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise HarnessError(f"profile {name_or_path}: expected a mapping at the top level")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profile(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict:
    if name_or_path in _seen:
        raise HarnessError(f"profile {name_or_path!r} extends itself (via {' -> '.join(_seen)})")
    data = _read_profile(name_or_path)
    parent = data.pop("extends", None)
    if parent:
        data = _merge(load_profile(parent, (*_seen, name_or_path)), data)
    return data


def _flat_keys(tree: dict, prefix: str = "") -> dict[str, Any]:
    keys = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.update(_flat_keys(value, dotted + "."))
        else:
            keys[dotted] = value
    return keys


def _coerce(key: str, raw: str, default: Any) -> Any:
    """Parse `raw` as YAML, then check it against the type of the schema default."""
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    if default is None or value is None:
        return value
    expected = type(default)
    if expected is float and isinstance(value, str):
        # YAML 1.1 wants a dot in a float's mantissa, so 5e-5 arrives as a string; Python reads it.
        try:
            return float(value)
        except ValueError:
            pass
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is list and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        parts = str(value).split(",") if isinstance(value, str) else [value]
        return [yaml.safe_load(v.strip()) if isinstance(v, str) else v for v in parts if str(v).strip()]
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return raw
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise HarnessError(f"--set {key}={raw}: expected {expected.__name__}, got {type(value).__name__}")
    return value


def apply_overrides(config: dict, overrides: list[str], schema: dict) -> dict:
    config = copy.deepcopy(config)
    valid = _flat_keys(schema)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise HarnessError(f"--set {item!r}: expected key=value")
        if key not in valid and not any(key.startswith(k + ".") for k in valid if valid[k] == {}):
            raise HarnessError(f"--set: unknown key {key!r}; valid keys: {', '.join(sorted(valid))}")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _coerce(key, raw, valid.get(key))
    return config


def resolve_config(profile: str = SCHEMA_PROFILE, overrides: list[str] | None = None) -> dict:
    """The profile merged over the schema, with overrides applied and every key checked."""
    schema = load_profile(SCHEMA_PROFILE)
    config = _merge(schema, load_profile(profile))
    unknown = sorted(set(_flat_keys(config)) - set(_flat_keys(schema)))
    unknown = [
        k for k in unknown if not any(k.startswith(s + ".") for s, v in _flat_keys(schema).items() if v == {})
    ]
    if unknown:
        raise HarnessError(f"profile {profile}: unknown keys {', '.join(unknown)}")
    config = apply_overrides(config, overrides or [], schema)
    config["profile"] = profile
    return config
