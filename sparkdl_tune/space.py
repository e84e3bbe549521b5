"""Search spaces: declared as YAML-shaped data, sampled by hyperopt, decoded to config values.

A space file has one top-level key, ``space``, mapping dotted config keys to dimensions::

    space:
      training.learning_rate: {loguniform: [1.0e-4, 3.0e-3]}   # real bounds, sampled in log
      training.batch_size: {choice: [64, 128, 256]}
      model.units: {choice: [[256, 128], [512]]}       # options may be lists or mappings
      model.dropout: {uniform: [0.0, 0.5]}
      model.layer_units: {quniform: [64, 512, 64]}     # multiples of q; bounds are multiples too
      model.n_layers: {int: [1, 4]}                    # inclusive: 1, 2, 3, 4
      model.kernel_size: {int: [3, 7, 2]}              # with a step: 3, 5, 7
      model.task: classification                       # a bare scalar is a fixed value
      model.input_shape: {fixed: [28, 28, 1]}          # a fixed list or mapping needs `fixed`
      model.architecture:                              # a nested (conditional) choice
        choice:
          - value: mlp                                 # an option with `value` is a branch:
            model.units: {choice: [[256, 128], [512]]} #   its other keys form a sub-space that
          - value: cnn2d                               #   is active only when it is chosen
            model.conv_blocks: {choice: [...]}
          - linear                                     # a plain option: a branch without keys

Option mappings without a ``value`` key are literal values (a conv block, say); to choose a
mapping that itself has a ``value`` key, wrap it: ``{value: {value: 1}}``. Branches nest to any
depth. Decoding gives a flat dict of real values with the choice key set to the branch's
``value`` and only the chosen branch's keys. Bounds written as ``1e-4`` (a string in YAML 1.1)
are accepted.

The same space from Python::

    SearchSpace({"training.learning_rate": LogUniform(1e-4, 3e-3),
                 "model.architecture": Choice([Branch("mlp", {"model.units": Choice([[512]])}),
                                               "linear"])})

Hyperopt labels are the dotted keys; a key inside a branch is labelled
``<choice label>=<branch value>/<key>``, e.g. ``model.architecture=mlp/model.units``. The point
hyperopt passes to the objective nests keys like a config file (``{"training":
{"learning_rate": ...}}``, a branch as ``{"value": "mlp", "model": {...}}``); because every key is
dotted, :meth:`SearchSpace.decode` tells a point (no dotted top-level key) from hyperopt
``vals`` (labels, all dotted) without guessing.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import math
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError

KINDS = ("choice", "uniform", "loguniform", "quniform", "int", "fixed")
#: Larger grids are refused: enumerating them costs memory and nobody can train them all.
MAX_GRID_POINTS = 100_000
_EDGE = 1e-6  # keeps hyperopt's rounded index off the half-way points at the range ends


def _number(value: Any, what: str, integer: bool = False) -> float | int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    if integer:
        if not float(value).is_integer():
            raise ConfigError(f"{what} must be an integer, got {value!r}")
        return int(value)
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _tidy(x: float) -> float:
    """Drop float noise such as 0.30000000000000004 from multiples of q."""
    return float(f"{x:.15g}")


class Spec:
    """One dimension's distribution. Its *vals value* is what hyperopt stores in
    ``trial["misc"]["vals"]``: an option index (choice), a step index (int), else the number."""

    kind = ""
    discrete = True

    def key(self, v: Any) -> Any:
        """Hashable canonical form of a vals value (for de-duplication)."""
        return float(v)

    def real(self, v: Any) -> Any:
        """The real value of a vals value."""
        return float(v)

    def from_point(self, v: Any) -> Any:
        """The real value of what hyperopt's point holds for this dimension."""
        return self.real(v)


@dataclasses.dataclass(frozen=True)
class Fixed(Spec):
    """A constant: always present in decoded points, never searched."""

    value: Any
    kind = "fixed"

    def real(self, v: Any = None) -> Any:
        return copy.deepcopy(self.value)

    from_point = real


@dataclasses.dataclass(frozen=True)
class Branch:
    """A choice option that activates a sub-space (dotted key -> dimension) when chosen."""

    value: Any
    space: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Choice(Spec):
    """One of ``options``: plain values, or :class:`Branch` objects for conditional sub-spaces."""

    options: Sequence[Any]
    kind = "choice"

    def __post_init__(self) -> None:
        options = list(self.options) if isinstance(self.options, (list, tuple)) else None
        if not options:
            raise ConfigError(f"choice needs a non-empty list of options, got {self.options!r}")
        if any(isinstance(o, Branch) for o in options):
            options = [o if isinstance(o, Branch) else Branch(o) for o in options]
            values = [o.value for o in options]
            for i, v in enumerate(values):
                if v in values[:i]:
                    raise ConfigError(f"choice has two branches with value {v!r}; "
                                      "give each branch a distinct value")
        object.__setattr__(self, "options", tuple(options))

    @property
    def branched(self) -> bool:
        return isinstance(self.options[0], Branch)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.options)))

    def key(self, v: Any) -> int:
        return min(max(int(round(float(v))), 0), len(self.options) - 1)

    def real(self, v: Any) -> Any:
        option = self.options[self.key(v)]
        return copy.deepcopy(option.value if isinstance(option, Branch) else option)

    def from_point(self, v: Any) -> Any:
        return copy.deepcopy(v)

    def grid(self) -> list[int]:
        return list(range(len(self.options)))

    def expr(self, label: str, hp: Any, options: list[Any] | None = None) -> Any:
        return hp.choice(label, options if options is not None else list(self.options))


@dataclasses.dataclass(frozen=True)
class Uniform(Spec):
    """A real number drawn uniformly from ``[low, high]``."""

    low: float
    high: float
    kind = "uniform"
    discrete = False

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            object.__setattr__(self, name, _number(getattr(self, name), f"{self.kind} {name}"))
        if self.low >= self.high:
            raise ConfigError(f"{self.kind} low must be < high, got [{self.low}, {self.high}]; "
                              "swap the bounds, or use {fixed: value} for a constant")

    def warp(self, x: float) -> float:
        return x

    def unwarp(self, u: float) -> float:
        return u

    def sample(self, rng: np.random.Generator) -> float:
        return self.unwarp(float(rng.uniform(self.warp(self.low), self.warp(self.high))))

    def real(self, v: Any) -> float:
        return min(max(float(v), self.low), self.high)

    def expr(self, label: str, hp: Any) -> Any:
        return hp.uniform(label, self.low, self.high)


@dataclasses.dataclass(frozen=True)
class LogUniform(Uniform):
    """A positive real number whose logarithm is uniform; bounds are real values."""

    kind = "loguniform"

    def __post_init__(self) -> None:
        low = _number(self.low, "loguniform low")
        if low <= 0:
            raise ConfigError(f"loguniform low must be > 0, got {low}; "
                              "use a positive lower bound such as 1e-5")
        super().__post_init__()

    def warp(self, x: float) -> float:
        return math.log(x)

    def unwarp(self, u: float) -> float:
        return math.exp(u)

    def expr(self, label: str, hp: Any) -> Any:
        return hp.loguniform(label, math.log(self.low), math.log(self.high))


@dataclasses.dataclass(frozen=True)
class QUniform(Spec):
    """A multiple of ``q`` in ``[low, high]``; integers when bounds and ``q`` are integers."""

    low: float
    high: float
    q: float
    kind = "quniform"

    def __post_init__(self) -> None:
        for name in ("low", "high", "q"):
            object.__setattr__(self, name, _number(getattr(self, name), f"quniform {name}"))
        if self.q <= 0:
            raise ConfigError(f"quniform q must be > 0, got {self.q}; use a positive step")
        if self.low >= self.high:
            raise ConfigError(f"quniform low must be < high, got [{self.low}, {self.high}]; "
                              "swap the bounds")
        for name in ("low", "high"):
            k = getattr(self, name) / self.q
            if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
                raise ConfigError(
                    f"quniform {name} {getattr(self, name)} is not a multiple of q {self.q}; "
                    f"hyperopt rounds samples to multiples of q, so use e.g. "
                    f"{_tidy(math.floor(k) * self.q)} or {_tidy(math.ceil(k) * self.q)}")

    @property
    def index_range(self) -> tuple[int, int]:
        return round(self.low / self.q), round(self.high / self.q)

    @property
    def _integral(self) -> bool:
        return all(isinstance(x, int) for x in (self.low, self.high, self.q))

    def value_of(self, k: int) -> float | int:
        lo, hi = self.index_range
        x = min(max(k, lo), hi) * self.q
        return int(round(x)) if self._integral else _tidy(x)

    def sample(self, rng: np.random.Generator) -> float:
        lo, hi = self.index_range
        return float(self.value_of(int(rng.integers(lo, hi + 1))))

    def key(self, v: Any) -> int:
        return int(round(float(v) / self.q))

    def real(self, v: Any) -> float | int:
        return self.value_of(self.key(v))

    def grid(self) -> list[float]:
        lo, hi = self.index_range
        return [float(self.value_of(k)) for k in range(lo, hi + 1)]

    def expr(self, label: str, hp: Any) -> Any:
        from hyperopt.pyll import scope

        e = hp.quniform(label, self.low, self.high, self.q)
        return scope.int(e) if self._integral else e


@dataclasses.dataclass(frozen=True)
class IntRange(Spec):
    """An integer in ``low, low + step, ..., <= high`` (both ends included)."""

    low: int
    high: int
    step: int = 1
    kind = "int"

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            object.__setattr__(self, name, _number(getattr(self, name), f"int {name}", True))
        if self.step <= 0:
            raise ConfigError(f"int step must be > 0, got {self.step}; use a positive step")
        if self.low > self.high:
            raise ConfigError(f"int low must be <= high, got [{self.low}, {self.high}]; "
                              "swap the bounds")

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.integers(self.size))

    def key(self, v: Any) -> int:
        return min(max(int(round(float(v))), 0), self.size - 1)

    def real(self, v: Any) -> int:
        return self.low + self.step * self.key(v)

    def from_point(self, v: Any) -> int:
        return self.real((int(round(float(v))) - self.low) / self.step)

    def grid(self) -> list[float]:
        return [float(k) for k in range(self.size)]

    def expr(self, label: str, hp: Any) -> Any:
        from hyperopt.pyll import scope

        # hyperopt samples the step index; the point gets the integer itself.
        k = hp.quniform(label, -0.5 + _EDGE, self.size - 0.5 - _EDGE, 1)
        return scope.int(k * self.step + self.low)


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One entry of a built space.

    Attributes:
        name: Dotted config key it sets.
        label: Unique hyperopt label.
        spec: Its distribution (:class:`Choice`, :class:`Uniform`, ...).
        condition: ``(choice label, branch value)`` pairs that must hold for it to be active.
        children: For a branched choice, the sub-dimensions of each option, in option order.
    """

    name: str
    label: str
    spec: Spec
    condition: tuple[tuple[str, Any], ...] = ()
    children: tuple[tuple[Dimension, ...], ...] = ()

    @property
    def kind(self) -> str:
        return self.spec.kind


def parse_spec(raw: Any) -> Spec:
    """Turn one YAML-shaped dimension (``{uniform: [0, 1]}``, a scalar, ...) into a Spec."""
    if isinstance(raw, Spec):
        return raw
    if raw is None or isinstance(raw, (str, int, float, bool)):
        return Fixed(raw)
    if isinstance(raw, list):
        raise ConfigError("a bare list is ambiguous; write {choice: [...]} to search among its "
                          "items or {fixed: [...]} for a constant list")
    if not isinstance(raw, Mapping) or len(raw) != 1:
        known = [k for k in raw if k in KINDS] if isinstance(raw, Mapping) else []
        if known:
            raise ConfigError(f"'{known[0]}' has extra keys {sorted(set(raw) - {known[0]})}; "
                              "give one type per entry")
        raise ConfigError(f"expected one of {{{'|'.join(KINDS)}: ...}}, got {raw!r}; write "
                          "{fixed: ...} for a constant mapping")
    (kind, args), = raw.items()
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(KINDS)}"
        raise ConfigError(f"unknown type '{kind}'; {hint}")
    if kind == "fixed":
        return Fixed(args)
    if kind == "choice":
        if not isinstance(args, list):
            raise ConfigError(f"choice takes a list of options, got {args!r}")
        return Choice([_parse_option(o) for o in args])
    forms = {"uniform": ["low, high"], "loguniform": ["low, high"], "quniform": ["low, high, q"],
             "int": ["low, high", "low, high, step"]}[kind]
    if not isinstance(args, list) or len(args) not in [f.count(",") + 1 for f in forms]:
        wanted = " or ".join(f"[{f}]" for f in forms)
        raise ConfigError(f"{kind} takes {wanted}, got {args!r}")
    cls = {"uniform": Uniform, "loguniform": LogUniform, "quniform": QUniform, "int": IntRange}
    return cls[kind](*args)


def _parse_option(option: Any) -> Any:
    if not isinstance(option, Mapping):
        return option
    if "value" in option:
        return Branch(option["value"], {k: v for k, v in option.items() if k != "value"})
    if any("." in str(k) for k in option):
        raise ConfigError(f"option {dict(option)!r} has dotted keys like a branch but no "
                          "'value'; add e.g. value: mlp")
    return option


class SearchSpace:
    """A validated search space; see the module docstring for the syntax.

    Args:
        entries: Dotted config key -> :class:`Spec` (or a scalar, which is fixed).
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
        labels = [d.label for d in self.dimensions if d.kind != "fixed"]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{self.source}: duplicate hyperopt labels {labels}; give branches "
                              "distinct values")
        self.labels = labels
        self._check_conflicts()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "search space") -> SearchSpace:
        """Build from plain data: ``{key: spec, ...}`` or the file layout ``{space: {...}}``."""
        return cls._from_data(data, source, {})

    @classmethod
    def from_yaml(cls, path: str | pathlib.Path) -> SearchSpace:
        """Read a space file whose top level is ``space: {<dotted key>: <spec>, ...}``."""
        from .config import read_yaml

        path = pathlib.Path(path)
        if not path.is_file():
            raise ConfigError(f"search space file {path} does not exist; check the path")
        data, origins = read_yaml(path)
        return cls._from_data(data, str(path), origins)

    @classmethod
    def _from_data(cls, data: Any, source: str, origins: Mapping[str, str]) -> SearchSpace:
        if isinstance(data, Mapping) and "space" in data:
            extra = sorted(set(data) - {"space"})
            if extra:
                raise ConfigError(f"{source}: unknown top-level key '{extra[0]}'; a space file "
                                  "has only 'space: {<dotted key>: <spec>}'")
            data = data["space"]
            origins = {k[len("space."):]: v for k, v in origins.items() if k.startswith("space.")}
        return cls(data, source, origins)

    def _build(self, entries: Mapping[str, Any], prefix: str, condition: tuple,
               where: str | None) -> tuple[Dimension, ...]:
        dims = []
        for key, raw in entries.items():
            label = f"{prefix}{key}"
            at = where or self._origins.get(str(key), self.source)
            try:
                if not isinstance(key, str) or "." not in key or "" in key.split("."):
                    raise ConfigError(f"key must be a dotted config key such as "
                                      f"'training.{key}'")
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

    def _check_conflicts(self) -> None:
        dims = self.dimensions
        for i, a in enumerate(dims):
            for b in dims[i + 1:]:
                clash = a.name == b.name or b.name.startswith(a.name + ".") or \
                    a.name.startswith(b.name + ".")
                conds = dict(a.condition)
                if clash and all(conds.get(lab, v) == v for lab, v in b.condition):
                    raise ConfigError(f"{self.source}: space entries '{a.label}' and '{b.label}' "
                                      "set the same config key at once; keep one of them")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_grid_cache": None}

    def __repr__(self) -> str:
        return f"SearchSpace({self.source!r}, {len(self.dimensions)} dimensions)"

    def to_hyperopt(self) -> dict[str, Any]:
        """The hyperopt space expression, for ``fmin(space=...)``."""
        from hyperopt import hp

        def exprs(dims: Sequence[Dimension]) -> dict[str, Any]:
            out = {}
            for d in dims:
                if isinstance(d.spec, Fixed):
                    out[d.name] = copy.deepcopy(d.spec.value)
                elif d.children:
                    options = [{"value": copy.deepcopy(b.value), **exprs(kids)}
                               for b, kids in zip(d.spec.options, d.children)]
                    out[d.name] = d.spec.expr(d.label, hp, options)
                else:
                    out[d.name] = d.spec.expr(d.label, hp)
            return _nest(out)

        return exprs(self.root)

    def decode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Real values by dotted key, only for active dimensions, fixed ones included.

        Args:
            values: hyperopt vals (``fmin``'s result, ``trials.argmin``,
                ``trial["misc"]["vals"]``) or the point hyperopt passed to the objective.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"decode takes a mapping, got {type(values).__name__}")
        out: dict[str, Any] = {}
        if not values or any("." in str(k) for k in values):
            _decode_vals(self.root, values, out)
        else:
            _decode_point(self.root, values, out)
        return out

    def is_discrete(self) -> bool:
        """True when every dimension takes finitely many values (grid search works)."""
        return all(d.spec.discrete for d in self.dimensions)

    def grid_vals(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every point of a discrete space as ``(key, vals)``, first dimension slowest."""
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

    def grid_points(self) -> list[dict[str, Any]]:
        """Every point of a discrete space, decoded, in a deterministic order."""
        return [self.decode(v) for _, v in self.grid_vals()]

    def sample_vals(self, rng: np.random.Generator,
                    dims: Sequence[Dimension] | None = None) -> dict[str, Any]:
        """A random point as hyperopt vals (label -> vals value, active labels only)."""
        out: dict[str, Any] = {}
        for d in self.root if dims is None else dims:
            if isinstance(d.spec, Fixed):
                continue
            out[d.label] = v = d.spec.sample(rng)
            if d.children:
                out.update(self.sample_vals(rng, d.children[d.spec.key(v)]))
        return out

    def vals_key(self, vals: Mapping[str, Any]) -> tuple:
        """Hashable identity of a point given as vals; ``KeyError`` if a label is missing."""
        out: list[tuple[str, Any]] = []

        def walk(dims: Sequence[Dimension]) -> None:
            for d in dims:
                if not isinstance(d.spec, Fixed):
                    k = d.spec.key(_first(vals[d.label], d.label))
                    out.append((d.label, k))
                    if d.children:
                        walk(d.children[k])

        walk(self.root)
        return tuple(out)


def _tag(value: Any, index: int) -> str:
    return str(value) if isinstance(value, (str, int, float, bool)) else f"#{index}"


def _walk(dims: Sequence[Dimension]) -> Iterator[Dimension]:
    for d in dims:
        yield d
        for kids in d.children:
            yield from _walk(kids)


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


_MISSING = object()


def _first(v: Any, label: str) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        v = v[0] if len(v) else _MISSING
    if v is _MISSING:
        raise KeyError(label)
    return v


def _decode_vals(dims: Sequence[Dimension], vals: Mapping[str, Any], out: dict) -> None:
    for d in dims:
        if isinstance(d.spec, Fixed):
            out[d.name] = d.spec.real()
            continue
        try:
            v = _first(vals.get(d.label, _MISSING), d.label)
        except KeyError:
            raise ValueError(f"no value for '{d.label}' in {sorted(vals)}; pass hyperopt vals "
                             "(fmin's result, trials.argmin, trial['misc']['vals']) or a point "
                             "made by SearchSpace.to_hyperopt()") from None
        out[d.name] = d.spec.real(v)
        if d.children:
            _decode_vals(d.children[d.spec.key(v)], vals, out)


def _decode_point(dims: Sequence[Dimension], point: Mapping[str, Any], out: dict) -> None:
    for d in dims:
        node: Any = point
        for part in d.name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"the point has no '{d.name}'; pass a point made by "
                                 "SearchSpace.to_hyperopt() or hyperopt vals")
            node = node[part]
        if d.children:
            values = [b.value for b in d.spec.options]
            chosen = node.get("value") if isinstance(node, Mapping) else _MISSING
            if chosen not in values:
                raise ValueError(f"'{d.name}' in the point is {node!r}, not one of the branches "
                                 f"{values}")
            out[d.name] = copy.deepcopy(chosen)
            _decode_point(d.children[values.index(chosen)], node, out)
        else:
            out[d.name] = d.spec.from_point(node)


def _count(dims: Sequence[Dimension]) -> int:
    n = 1
    for d in dims:
        if d.children:
            n *= sum(_count(kids) for kids in d.children)
        elif not isinstance(d.spec, Fixed):
            n *= len(d.spec.grid())
    return n


def _grid(dims: Sequence[Dimension]) -> Iterator[dict[str, Any]]:
    axes = []
    for d in dims:
        if isinstance(d.spec, Fixed):
            continue
        if d.children:
            axes.append([{d.label: i, **sub} for i in d.spec.grid()
                         for sub in _grid(d.children[i])])
        else:
            axes.append([{d.label: v} for v in d.spec.grid()])
    for combo in itertools.product(*axes):
        yield {k: v for part in combo for k, v in part.items()}
