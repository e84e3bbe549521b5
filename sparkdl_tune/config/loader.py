"""Typed, frozen configuration; the only YAML reader in the package.

Layers, lowest first::

    package defaults (sparkdl_tune/config/defaults.yaml)
    < conf/base/*.yaml < conf/<env>/*.yaml < the job's own files < key.sub=value overrides

Every layer is checked against the dataclass tree in :mod:`sparkdl_tune.config.schema`: an unknown
key or a value of the wrong type is a :class:`ConfigError` naming the file and line it came from,
the dotted key, and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import pathlib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError, public

# importlib.resources also reads it when the package is shipped as a zip (--py-files)
DEFAULTS_FILE = importlib.resources.files(__package__).joinpath("defaults.yaml")
COMMAND_LINE = "command line"
# What PyYAML's constructors raise, besides YAMLError, on a tag whose text they cannot read
# (``!!int`` with no value: IndexError; ``!!float x``: ValueError)
TAG_ERRORS = (ValueError, TypeError, IndexError, OverflowError)

T = typing.TypeVar("T")


@public
def load_config(
    conf_dir: str | pathlib.Path | None = "conf",
    env: str | None = None,
    files: Iterable[str | pathlib.Path] = (),
    overrides: Iterable[str] = (),
    schema: type[T] | None = None,
) -> T:
    """Read every layer, merge them and return the typed, frozen config.

    Args:
        conf_dir: Folder with ``base/`` and per-environment overlays; skipped when absent.
        env: Name of the overlay folder under ``conf_dir`` (``prod``, ``databricks``, ...);
            ``None`` or ``""``: no overlay. An overlay asked for that does not exist is a
            :class:`ConfigError`, never skipped: its settings would silently not apply.
        files: Further YAML files, applied in order after the overlays.
        overrides: ``dotted.key=value`` strings; values are parsed as YAML scalars/lists.
        schema: Root dataclass; defaults to :class:`sparkdl_tune.config.schema.Config`.
    """
    if schema is None:
        from .schema import Config

        schema = Config
    paths = [DEFAULTS_FILE]
    if conf_dir is not None and pathlib.Path(conf_dir).is_dir():
        root = pathlib.Path(conf_dir)
        paths += sorted((root / "base").glob("*.yaml"))
    if env:
        paths += sorted(_overlay_dir(conf_dir, env).glob("*.yaml"))
    for f in files:
        p = pathlib.Path(f)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist; check the path")
        paths.append(p)

    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in paths:
        layer, layer_origins = read_yaml(path)
        check_keys(schema, layer, layer_origins)
        merge(data, layer)
        origins.update(layer_origins)
    for item in overrides:
        apply_override(schema, data, origins, item)
    return build(schema, data, origins)


# folders of conf/ that are not environment overlays
NOT_ENVS = frozenset({"base", "jobs", "spaces"})


def _overlay_dir(conf_dir: str | pathlib.Path | None, env: str) -> pathlib.Path:
    """``conf_dir/env``, which must exist: an overlay the user named and we skipped would leave
    its settings silently unapplied."""
    if conf_dir is None:
        raise ConfigError(f"environment overlay '{env}' was asked for but no conf folder was "
                          "given to read it from; pass one (--conf-dir) or leave env unset")
    root = pathlib.Path(conf_dir)
    path = root / env
    if env not in NOT_ENVS and path.is_dir():
        return path
    envs = available_envs(root)
    listing = ", ".join(envs) if envs else "none"
    if env in NOT_ENVS:
        problem = f"'{env}' is not an environment overlay ({path} holds {env} files)"
        create = ""
    else:
        problem = f"environment overlay {path} does not exist"
        create = f", create {path}/ with the YAML to layer over base"
    pick = "pick one of them (--env, or the notebooks' env widget)" if envs else "fix --env"
    raise ConfigError(f"{problem}; environments in {root}: {listing}; {pick}{create}, or leave "
                      "env unset for no overlay")


def available_envs(conf_dir: str | pathlib.Path) -> list[str]:
    """The environment overlays under ``conf_dir``: its folders other than base/jobs/spaces."""
    root = pathlib.Path(conf_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and p.name not in NOT_ENVS and not p.name.startswith("."))


def read_yaml(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse one YAML file into a dict plus ``dotted key -> "file:line"`` origins."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                          "YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check the path and its "
                          "permissions") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    except TAG_ERRORS as exc:
        raise ConfigError(f"{path}: a tagged value (!!int, !!float, ...) cannot be read "
                          f"({type(exc).__name__}: {exc}); fix or drop the tag") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{path}: nested too deeply for a config file; flatten it") from None
    _refuse_cycles(node, str(path))
    _refuse_duplicate_keys(node, "", path, set())
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of sections")
    origins: dict[str, str] = {}
    _record_origins(node, "", path, origins)
    return data, origins


def _refuse_cycles(node: Any, where: str) -> None:
    """A collection that holds itself through an alias (``a: &x [*x]``) is an error: it has no
    end, so it can be neither merged nor typed (nor logged)."""
    import yaml

    on_path: set[int] = set()
    done: set[int] = set()
    # iterative depth-first walk: an alias may point back at any collection above it
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        current, leaving = stack.pop()
        if leaving:
            on_path.discard(id(current))
            done.add(id(current))
            continue
        if not isinstance(current, yaml.CollectionNode) or id(current) in done:
            continue
        if id(current) in on_path:
            line = current.start_mark.line + 1
            raise ConfigError(f"{where}: the value at line {line} contains itself through an "
                              "alias (&anchor ... *anchor); write the value out instead")
        on_path.add(id(current))
        stack.append((current, True))
        children = (current.value if isinstance(current, yaml.SequenceNode)
                    else [n for pair in current.value for n in pair])
        stack.extend((child, False) for child in reversed(children))


def _refuse_duplicate_keys(node: Any, prefix: str, path: pathlib.Path, seen: set) -> None:
    """A key given twice in one mapping, at any depth, is an error: PyYAML keeps the last
    silently, so one of the two values the user wrote would be dropped without a word."""
    import yaml

    if node is None or id(node) in seen:  # an alias to a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{prefix.rstrip('.')}[{i}].", path, seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[tuple, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base': overriding is its point
                continue
            line = key_node.start_mark.line + 1
            dotted = f"{prefix}{key_node.value}"
            ident = (key_node.tag, key_node.value if isinstance(key_node, yaml.ScalarNode)
                     else id(key_node))
            if ident in lines:
                raise ConfigError(f"{path}: key '{dotted}' is given twice (lines {lines[ident]} "
                                  f"and {line}); keep one")
            lines[ident] = line
            _refuse_duplicate_keys(value_node, dotted + ".", path, seen)


def _record_origins(node: Any, prefix: str, path: pathlib.Path, out: dict[str, str]) -> None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        out[key] = f"{path}:{key_node.start_mark.line + 1}"
        _record_origins(value_node, key + ".", path, out)


def merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    """Deep-merge ``overlay`` into ``base``: mappings merge, everything else replaces."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def check_keys(cls: type, data: Any, origins: Mapping[str, str], prefix: str = "") -> None:
    """Reject unknown keys early, so the error names the layer that introduced them."""
    if not isinstance(data, Mapping):
        return
    fields = _fields(cls)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(_unknown_key(dotted, key, fields, prefix, origins.get(dotted)))
        inner = _dataclass_of(fields[key])
        if inner is not None:
            check_keys(inner, value, origins, dotted + ".")


def apply_override(cls: type, data: dict[str, Any], origins: dict[str, str], item: str) -> None:
    """Apply one ``dotted.key=value`` override; free-form mappings take the rest as one key."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not key=value; write e.g. training.epochs=3")
    value, node = raw, None
    try:
        if raw.strip():
            node, value = yaml.compose(raw), yaml.safe_load(raw)
        else:
            value = ""
    except (yaml.YAMLError, *TAG_ERRORS):
        value = raw  # not YAML: the text itself
    except RecursionError:
        raise ConfigError(f"override {key.strip()!r}: the value is nested too deeply; "
                          "flatten it") from None
    _refuse_cycles(node, f"override {key.strip()!r}")
    set_value(cls, data, origins, key.strip(), value, COMMAND_LINE)


def set_value(cls: type, data: dict[str, Any], origins: dict[str, str], key: str, value: Any,
              where: str) -> None:
    """Set ``data[dotted key] = value``, checking each step of the key against ``cls``."""
    parts = key.split(".")
    node, current = data, cls
    for i, part in enumerate(parts):
        fields = _fields(current)
        prefix = ".".join(parts[:i]) + "." if i else ""
        if part not in fields:
            raise ConfigError(_unknown_key(prefix + part, part, fields, prefix, where))
        hint = fields[part]
        inner = _dataclass_of(hint)
        last = i == len(parts) - 1
        if inner is not None and not last:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, current = node[part], inner
            continue
        if _is_mapping(hint) and not last:
            if node.get(part) is None:  # unset, or an empty `conf:` in a file
                node[part] = {}
            elif not isinstance(node[part], dict):
                came_from = origins.get(prefix + part, "an earlier layer")
                raise ConfigError(f"{where}: cannot set '{key}': '{prefix}{part}' is "
                                  f"{node[part]!r} ({came_from}), not a mapping; set it to a "
                                  "mapping first")
            node[part][".".join(parts[i + 1 :])] = value
        else:
            node[part] = value
        origins[key] = where
        return


@public
def with_values(cfg: T, values: Mapping[str, Any], where: str = "search space") -> T:
    """A copy of the frozen ``cfg`` with dotted keys replaced, type-checked like any layer.

    This is how a trial's hyper-parameters become its config.
    """
    data = _plain(cfg)
    origins: dict[str, str] = {}
    for key, value in values.items():
        set_value(type(cfg), data, origins, key, _plain(value), where)
    return build(type(cfg), data, origins)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build(cls: type[T], data: Any, origins: Mapping[str, str], prefix: str = "") -> T:
    """Turn merged plain data into the frozen dataclass ``cls``, checking every type."""
    where = origins.get(prefix.rstrip("."), "config")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: '{prefix.rstrip('.')}' must be a mapping, got {data!r}")
    fields = _fields(cls)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(_unknown_key(dotted, key, fields, prefix, origins.get(dotted)))
        kwargs[key] = _convert(fields[key], value, dotted, origins)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'config'}: {exc}") from None


def _convert(hint: Any, value: Any, dotted: str, origins: Mapping[str, str]) -> Any:
    where = origins.get(dotted, "config")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value if value is not None else {}, origins, dotted + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, dotted, origins)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{where}: '{dotted}' must be {_type_name(hint)}, got {value!r}"
        )
    if origin is typing.Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a boolean
        if value in args:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint_text = f"; did you mean '{close[0]}'?" if close else ""
        valid = ", ".join(str(a) for a in args)
        raise ConfigError(f"{where}: '{dotted}' is {value!r}, not one of: {valid}{hint_text}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{dotted}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{dotted}", origins) for v in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{dotted}' must be a mapping, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, f"{dotted}.{k}", origins) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an integer past 1.8e308
                raise ConfigError(f"{where}: '{dotted}' is an integer of {len(str(value))} "
                                  "digits, too large for a number; use a smaller value") from None
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, bool):  # YAML reads "true"; Spark conf wants the string "true"
            return str(value).lower()
        if isinstance(value, (str, int, float)):
            return str(value)
    else:
        return value
    raise ConfigError(f"{where}: '{dotted}' must be {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args:
        return " or ".join(_type_name(a) for a in args)
    return getattr(hint, "__name__", str(hint))


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass_of(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, Mapping) or hint in (dict, Mapping)


def _unknown_key(dotted: str, key: Any, fields: Mapping[str, Any], prefix: str, where) -> str:
    if not isinstance(key, str):  # YAML reads `1:`, `true:` or a bare `?` as a non-string key
        return (f"{where or 'config'}: key {key!r} at '{dotted}' is not a name; valid keys"
                f"{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(fields)}")
    close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
    fix = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys: {', '.join(fields)}"
    return f"{where or 'config'}: unknown key '{dotted}'; {fix}"


def as_flat_dict(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a config dataclass to ``{"section.key": value}`` (for MLflow params)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(as_flat_dict(value, key + "."))
        else:
            out[key] = value
    return out
