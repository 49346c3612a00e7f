"""Typed configuration: dataclasses are the schema, YAML profiles and `--set` only choose values.

Every stage owns one dataclass (problems, probe, teacher, train, eval, analysis) whose fields carry
their default and help text (`setting`). This module turns those dataclasses into the keys a profile
or `--set` may use, parses values by the field's type (so `5e-5` is a float, `a,b` a list), applies
the bounds declared on each field, and prints the documented schema (`harness config`). Profiles are
YAML files that set only what differs from the defaults; `extends:` chains them.

Hand-written rather than pydantic / OmegaConf: both are heavier than the ~150 lines this needs, and
neither reads the YAML 1.1 floats (`5e-5`) or comma lists of the command line the way users type them.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

DEFAULT_PROFILE = "smoke"


def setting(default: Any, help: str, *, minimum: float | None = None, choices: tuple = (), key: bool = True):
    """A config field: its default, its help text, optional bounds. `key=False`: set by code, not by users."""
    meta = {"help": help, "minimum": minimum, "choices": tuple(choices), "key": key}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, help: str):
    """A nested section (a dataclass field holding another config dataclass)."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "key": True})


# ---------------------------------------------------------------- the schema of a dataclass --------


@dataclasses.dataclass(frozen=True)
class Key:
    path: str  # dotted: train.learning_rate
    type: Any  # the resolved type hint
    default: Any
    help: str
    minimum: float | None
    choices: tuple


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _user_fields(cls: type):
    return [f for f in dataclasses.fields(cls) if f.metadata.get("key", True)]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def schema_keys(cls: type, prefix: str = "") -> dict[str, Key]:
    """Every settable key of `cls`, sections flattened to dotted paths, in declaration order."""
    keys: dict[str, Key] = {}
    hints = _hints(cls)
    for f in _user_fields(cls):
        hint, path = hints[f.name], f"{prefix}{f.name}"
        if _is_section(hint):
            keys.update(schema_keys(hint, path + "."))
        else:
            m = f.metadata
            keys[path] = Key(
                path, hint, _default(f), m.get("help", ""), m.get("minimum"), m.get("choices", ())
            )
    return keys


def sections(cls: type, prefix: str = "") -> dict[str, str]:
    """Dotted section path -> its help text."""
    out = {}
    hints = _hints(cls)
    for f in _user_fields(cls):
        if _is_section(hints[f.name]):
            out[prefix + f.name] = f.metadata.get("help", "")
            out.update(sections(hints[f.name], prefix + f.name + "."))
    return out


# ---------------------------------------------------------------- values ---------------------------


def _optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), type(None) in typing.get_args(hint)
    return hint, False


def _scalar(path: str, value: Any, hint: Any) -> Any:
    bad = HarnessError(f"{path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 wants a dot in a float's mantissa, so 5e-5 arrives as a string; Python reads it.
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    return value


def convert(path: str, value: Any, hint: Any) -> Any:
    """`value` (from YAML or the command line) as the type `hint` declares, or a one-line error."""
    hint, optional = _optional(hint)
    if value is None:
        if optional:
            return None
        raise HarnessError(f"{path}: may not be null")
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):  # the command line's a,b,c
            value = [yaml.safe_load(v.strip()) for v in value.split(",") if v.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return [_scalar(path, v, item) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise HarnessError(f"{path}: expected a mapping, got {value!r}")
        _, item = typing.get_args(hint) or (str, Any)
        return {str(k): _scalar(f"{path}.{k}", v, item) for k, v in value.items()}
    return _scalar(path, value, hint)


def _check_bounds(key: Key, value: Any) -> None:
    if value is None:
        return
    values = value if isinstance(value, list) else [value]
    for v in values:
        if key.choices and v not in key.choices:
            raise HarnessError(f"{key.path}={v}: choose one of {', '.join(map(str, key.choices))}")
        if key.minimum is not None and isinstance(v, (int, float)) and v < key.minimum:
            raise HarnessError(f"{key.path}={v}: must be >= {key.minimum:g}")


# ---------------------------------------------------------------- building -------------------------


def build(cls: type, tree: dict | None, prefix: str = ""):
    """An instance of `cls` from a (possibly partial) mapping; unknown keys and bad values are errors.

    Defaults fill what the mapping leaves out; the dataclass's own __post_init__ then checks what
    spans several fields.
    """
    tree = dict(tree or {})
    hints = _hints(cls)
    fields = {f.name: f for f in _user_fields(cls)}
    unknown = [k for k in tree if k not in fields]
    if unknown:
        where = prefix.rstrip(".") or "the top level"
        raise HarnessError(
            f"unknown key {prefix}{unknown[0]} (in {where}); valid: {', '.join(prefix + k for k in fields)}"
        )
    kwargs = {}
    for name, value in tree.items():
        hint, path = hints[name], prefix + name
        if _is_section(hint):
            if value is not None and not isinstance(value, dict):
                raise HarnessError(f"{path}: expected a section (a mapping), got {value!r}")
            kwargs[name] = build(hint, value, path + ".")
        else:
            f = fields[name]
            key = Key(path, hint, None, "", f.metadata.get("minimum"), f.metadata.get("choices", ()))
            kwargs[name] = convert(path, value, hint)
            _check_bounds(key, kwargs[name])
    for name, f in fields.items():
        if name not in kwargs and not _is_section(hints[name]):
            key = Key(
                prefix + name, hints[name], None, "", f.metadata.get("minimum"), f.metadata.get("choices", ())
            )
            _check_bounds(key, _default(f))
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field the mapping lacks
        raise HarnessError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> dict:
    """The user-settable values of a config instance, as plain YAML/JSON types."""
    out = {}
    for f in _user_fields(type(obj)):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------- profiles and --set ---------------


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


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profile(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict:
    """A profile's values, merged over the profiles it `extends:` (nothing is checked yet)."""
    if name_or_path in _seen:
        raise HarnessError(f"profile {name_or_path!r} extends itself (via {' -> '.join(_seen)})")
    data = _read_profile(name_or_path)
    parent = data.pop("extends", None)
    if parent:
        data = merge(load_profile(parent, (*_seen, name_or_path)), data)
    return data


def apply_overrides(tree: dict, overrides: list[str], cls: type) -> dict:
    """`--set a.b=value` items applied to a profile mapping; keys are checked against `cls`'s schema."""
    tree = copy.deepcopy(tree)
    keys = schema_keys(cls)
    for item in overrides:
        path, sep, raw = item.partition("=")
        path = path.strip()
        if not sep or not path:
            raise HarnessError(f"--set {item!r}: expected key=value")
        parent = path.rpartition(".")[0]
        mapping_entry = parent in keys and typing.get_origin(_optional(keys[parent].type)[0]) is dict
        if path not in keys and not mapping_entry:
            near = [k for k in keys if k.rpartition(".")[0] == parent] or list(keys)
            raise HarnessError(
                f"--set: unknown key {path!r}; valid: {', '.join(near)} (`harness config` explains)"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if (
            path in keys
            and typing.get_origin(_optional(keys[path].type)[0]) is list
            and isinstance(value, str)
        ):
            value = raw  # a,b,c: split by convert, item by item
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return tree


def describe(config: Any) -> str:
    """A config as commented YAML: every key, its value and its help (what `harness config` prints)."""
    lines: list[str] = []
    helps = sections(type(config))

    def walk(obj: Any, indent: str, prefix: str) -> None:
        hints = _hints(type(obj))
        for f in _user_fields(type(obj)):
            value, path = getattr(obj, f.name), prefix + f.name
            if _is_section(hints[f.name]):
                lines.append(f"{indent}{f.name}:{'  # ' + helps[path] if helps.get(path) else ''}")
                walk(value, indent + "  ", path + ".")
                continue
            shown = yaml.safe_dump(to_dict_value(value), default_flow_style=True, width=10**6).strip()
            shown = shown.removesuffix("\n...").removesuffix("...").strip()
            comment = f.metadata.get("help", "")
            lines.append(f"{indent}{f.name}: {shown}" + (f"  # {comment}" if comment else ""))

    walk(config, "", "")
    return "\n".join(lines) + "\n"


def to_dict_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
