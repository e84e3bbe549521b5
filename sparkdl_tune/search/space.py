"""Search spaces: declared as YAML-shaped data, sampled by hyperopt, decoded to config values.

A space file has one top-level key, ``space``, mapping dotted config keys to dimensions::

    space:
      training.learning_rate: {loguniform: [1.0e-4, 3.0e-3]}  # real bounds, sampled in log
      training.batch_size: {choice: [64, 128, 256]}
      model.dropout: {uniform: [0.0, 0.5]}
      model.layer_units: {quniform: [64, 512, 64]}    # multiples of q (bounds too)
      model.n_layers: {int: [1, 4]}                   # inclusive: 1, 2, 3, 4
      model.kernel_size: {int: [3, 7, 2]}             # with a step: 3, 5, 7
      model.task: classification                      # a bare scalar is fixed
      model.input_shape: {fixed: [28, 28, 1]}         # a fixed list or mapping needs `fixed`
      data.feature_columns: {subset: [x1, x2, d1], min: 1}  # a subset of named columns
      model.architecture:                             # a nested (conditional) choice
        choice:
          - value: mlp                                # an option with `value` is a branch: its
            model.units: {choice: [[256, 128], [512]]}  # other keys are a sub-space, active
          - value: cnn2d                              # only when the branch is chosen
            model.conv_blocks: {choice: [[{filters: 32}], [{filters: 32}, {filters: 64}]]}
          - linear                                    # a plain option: a branch with no keys

Options may be scalars, lists or mappings; a mapping option without ``value`` is a literal (a
conv block, say); to choose a mapping that has a ``value`` key, wrap it: ``{value: {value: 1}}``.
Branches nest to any depth. Bounds written ``1e-4`` (a string to YAML 1.1) are accepted.

From Python the same space is ``SearchSpace({"training.learning_rate": LogUniform(1e-4, 3e-3),
"model.architecture": Choice([Branch("mlp", {"model.units": Choice([[512]])}), "linear"])})``.

Hyperopt labels are the dotted keys; a key inside a branch is labelled ``<choice label>=<branch
value>/<key>``, e.g. ``model.architecture=mlp/model.units``. The point hyperopt hands the
objective nests keys like a config file (``{"training": {"learning_rate": ...}}``, a branch as
``{"value": "mlp", "model": {...}}``; lists come back as tuples). :meth:`SearchSpace.decode`
turns that point, or hyperopt ``vals`` (keyed by labels, which are always dotted, so the two are
never confused), into a flat ``{dotted key: real value}`` dict: choices give their option, not its
index, a branched choice gives its ``value``, and only the chosen branch's keys appear.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

# The dimension types live in .dimensions; they are re-exported here so that
# ``from sparkdl_tune.search.space import Choice, Uniform, parse_spec, ...`` keeps working.
from .dimensions import (  # noqa: F401
    KINDS,
    Branch,
    Choice,
    Dimension,
    Fixed,
    IntRange,
    LogUniform,
    QUniform,
    Spec,
    Subset,
    Uniform,
    parse_spec,
)

#: Larger grids are refused: enumerating them costs memory and nobody can train them all.
MAX_GRID_POINTS = 100_000


class SearchSpace:
    """A validated search space; see the module docstring for the syntax.

    Args:
        entries: Dotted config key -> :class:`Spec`, or YAML-shaped data (a scalar is fixed).
        source: Where the space came from, for error messages (a file path).
    """

    def __init__(self, entries: Mapping[str, Any], source: str = "search space",
                 _origins: Mapping[str, str] | None = None) -> None:
        self.source = str(source)
        if not isinstance(entries, Mapping) or not entries:
            raise ConfigError(f"{self.source}: the space must be a non-empty mapping of dotted "
                              f"keys to dimensions, got {entries!r}")
        self._origins, self._grid_cache = dict(_origins or {}), None
        self.root = self._build(entries, "", (), None)
        self.dimensions: list[Dimension] = list(_walk(self.root))
        self.labels = [d.label for d in self.dimensions if d.kind != "fixed"]
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"{self.source}: duplicate hyperopt labels in {self.labels}; give "
                              "branches distinct values")
        for i, a in enumerate(self.dimensions):
            for b in self.dimensions[i + 1:]:
                clash = a.name == b.name or b.name.startswith(a.name + ".") or \
                    a.name.startswith(b.name + ".")
                if clash and all(dict(a.condition).get(c, v) == v for c, v in b.condition):
                    raise ConfigError(f"{self.source}: space entries '{a.label}' and '{b.label}'"
                                      " set the same config key at once; keep one of them")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "search space",
                  _origins: Mapping[str, str] | None = None) -> SearchSpace:
        """Build from plain data: ``{key: spec, ...}`` or the file layout ``{space: {...}}``."""
        origins = _origins or {}
        if isinstance(data, Mapping) and "space" in data:
            extra = sorted((k for k in data if k != "space"), key=str)
            if extra:
                raise ConfigError(f"{source}: unknown top-level key '{extra[0]}'; a space file "
                                  "has only 'space: {<dotted key>: <spec>}'")
            data = data["space"]
            origins = {k[len("space."):]: v for k, v in origins.items() if k.startswith("space.")}
        return cls(data, source, origins)

    @classmethod
    def from_yaml(cls, path: str | pathlib.Path) -> SearchSpace:
        """Read a space file whose top level is ``space: {<dotted key>: <spec>, ...}``."""
        from ..config.loader import read_yaml

        path = pathlib.Path(path)
        if not path.is_file():
            raise ConfigError(f"search space file {path} does not exist; check the path")
        data, origins = read_yaml(path)
        return cls.from_dict(data, str(path), origins)

    def _build(self, entries: Mapping[str, Any], prefix: str, condition: tuple,
               where: str | None) -> tuple[Dimension, ...]:
        dims = []
        for key, raw in entries.items():
            label, at = f"{prefix}{key}", where or self._origins.get(str(key), self.source)
            try:
                if not isinstance(key, str) or "." not in key or "" in key.split("."):
                    raise ConfigError(f"key must be a dotted config key such as 'model.{key}'")
                if prefix and key.split(".")[0] == "value":
                    raise ConfigError("'value' is reserved in a branch; rename the key")
                spec = parse_spec(raw)
            except ConfigError as exc:
                raise ConfigError(f"{at}: space entry '{label}': {exc}") from None
            children: tuple = ()
            if isinstance(spec, Choice) and spec.branched:
                children = tuple(
                    self._build(b.space, f"{label}={_tag(b.value, i)}/",
                                condition + ((label, b.value),), at)
                    for i, b in enumerate(spec.options))
            dims.append(Dimension(key, label, spec, condition, children))
        return tuple(dims)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_grid_cache": None}

    def __repr__(self) -> str:
        return f"SearchSpace({self.source!r}, {len(self.dimensions)} dimensions)"

    def decode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Real values by dotted key: the active dimensions, fixed ones included.

        Args:
            values: Vals (an attempt's ``vals``, hyperopt's ``fmin`` result or
                ``trials.argmin``) or the point the engine passed to the objective.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"decode takes a mapping, got {type(values).__name__}")
        if values and not any("." in str(k) for k in values):
            values = _point_vals(self.root, values)
        return {d.name: d.spec.real(v) for d, v in self._active(_getter(values))}

    def is_discrete(self) -> bool:
        """True when every dimension takes finitely many values (grid search works)."""
        return all(d.spec.discrete for d in self.dimensions)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every point of a discrete space, decoded, first dimension varying slowest."""
        return [self.decode(v) for _, v in self.grid_vals()]

    def grid_vals(self) -> list[tuple[tuple, dict[str, Any]]]:
        """Every point of a discrete space as ``(vals_key, vals)``, in grid order."""
        if self._grid_cache is None:
            for d in self.dimensions:
                if not d.spec.discrete:
                    raise ConfigError(
                        f"{self.source}: grid search needs a discrete space, but '{d.label}' is "
                        f"{d.kind} (continuous); use {{choice: [...]}}, {{int: [low, high]}} or "
                        "{quniform: [low, high, q]} for it, or another algorithm")
            n = _count(self.root)
            if n > MAX_GRID_POINTS:
                raise ConfigError(f"{self.source}: the grid has {n} points (limit "
                                  f"{MAX_GRID_POINTS}); narrow the space or use tpe or random")
            self._grid_cache = [(self.vals_key(v), v) for v in _grid(self.root)]
        return self._grid_cache

    def sample_vals(self, rng: np.random.Generator,
                    dims: Sequence[Dimension] | None = None) -> dict[str, Any]:
        """A random point as vals (label -> vals value, active labels only)."""
        pick = lambda d: d.spec.sample(rng)  # noqa: E731
        return {d.label: v for d, v in self._active(pick, dims) if d.kind != "fixed"}

    def vals_key(self, vals: Mapping[str, Any]) -> tuple:
        """Hashable identity of a point given as vals; ``KeyError`` if a label is missing."""
        active = self._active(_getter(vals, strict=True))
        return tuple((d.label, d.spec.key(v)) for d, v in active if d.kind != "fixed")

    def _active(self, pick: Callable[[Dimension], Any],
                dims: Sequence[Dimension] | None = None) -> Iterator[tuple[Dimension, Any]]:
        """``(dimension, vals value)`` of the active dimensions, ``pick`` giving the values."""
        for d in self.root if dims is None else dims:
            v = None if d.kind == "fixed" else pick(d)
            yield d, v
            if d.children:
                yield from self._active(pick, d.children[d.spec.key(v)])


def _getter(vals: Mapping[str, Any], strict: bool = False) -> Callable[[Dimension], Any]:
    def pick(d: Dimension) -> Any:
        v = vals.get(d.label, ())
        v = v if not isinstance(v, (list, tuple, np.ndarray)) else v[0] if len(v) else None
        if v is None:
            if strict:
                raise KeyError(d.label)
            raise ValueError(f"no value for '{d.label}' in {sorted(vals)}; pass hyperopt vals "
                             "(fmin's result, trials.argmin, trial['misc']['vals']) or a point "
                             "made by engines.hyperopt.space_expression(space)")
        return v

    return pick


def _point_vals(dims: Sequence[Dimension], point: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dims:
        node: Any = point
        for part in d.name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"the point has no '{d.name}'; pass a point made by "
                                 "engines.hyperopt.space_expression(space) or hyperopt vals")
            node = node[part]
        if d.kind != "fixed":
            out[d.label] = d.spec.to_val(node)
        if d.children:
            out.update(_point_vals(d.children[out[d.label]], node))
    return out


def _tag(value: Any, index: int) -> str:
    return str(value) if isinstance(value, (str, int, float, bool)) else f"#{index}"


def _walk(dims: Sequence[Dimension]) -> Iterator[Dimension]:
    for d in dims:
        yield d
        for kids in d.children:
            yield from _walk(kids)


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _count(dims: Sequence[Dimension]) -> int:
    n = 1
    for d in dims:
        if d.children:
            n *= sum(_count(kids) for kids in d.children)
        elif d.kind != "fixed":
            n *= d.spec.count()  # counted, not listed: a grid past the limit may not fit
    return n


def _grid(dims: Sequence[Dimension]) -> Iterator[dict[str, Any]]:
    axes = []
    for d in dims:
        if d.children:
            axes.append([{d.label: i, **sub} for i in d.spec.grid()
                         for sub in _grid(d.children[i])])
        elif d.kind != "fixed":
            axes.append([{d.label: v} for v in d.spec.grid()])
    for combo in itertools.product(*axes):
        yield {k: v for part in combo for k, v in part.items()}


def to_python(value: Any) -> Any:
    """Numpy scalars (hyperopt's samples) as Python numbers, inside dicts, lists and tuples too,
    so points, trial documents and summaries stay JSON- and BSON-friendly."""
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value
