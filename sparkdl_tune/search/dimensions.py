"""Dimension types of a search space: one distribution each, parsed from YAML-shaped data.

The syntax is described in :mod:`sparkdl_tune.search.space`, which builds :class:`Dimension` entries
from these specs in :class:`~sparkdl_tune.search.space.SearchSpace` and re-exports the public names.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

KINDS = ("choice", "uniform", "loguniform", "quniform", "int", "fixed", "subset")
EDGE = 1e-6  # keeps hyperopt's rounded int index off the half-way points at the range ends
#: Most steps a dimension may have: hyperopt keeps a step index as a float, exact to 2**53.
MAX_STEPS = 2**53


def _numbers(spec: Any, names: Sequence[str], integer: bool = False) -> None:
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        what = f"{spec.kind} {name}"
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"{what} must be a number, got {value!r}")
        try:
            float(value)
        except OverflowError:  # an integer past 1.8e308
            raise ConfigError(f"{what} is an integer of {len(str(value))} digits, too large for "
                              "a number; use a smaller bound") from None
        if not math.isfinite(value) or (integer and not float(value).is_integer()):
            raise ConfigError(f"{what} must be a finite {'integer' if integer else 'number'}, "
                              f"got {value!r}")
        exact = integer or isinstance(value, (int, np.integer))
        object.__setattr__(spec, name, int(value) if exact else float(value))


def _tidy(x: float) -> float:
    """Drop float noise such as 0.30000000000000004 from multiples of q."""
    return float(f"{x:.15g}")


class Spec:
    """A dimension's distribution.

    Its *vals value* is what an attempt's ``vals`` hold (hyperopt's too): the option index for
    :class:`Choice`, the step index for :class:`IntRange`, the number itself otherwise.
    """

    kind, discrete = "", True

    def key(self, v: Any) -> Any:
        """Hashable canonical form of a vals value, for de-duplication."""
        return float(v)

    def real(self, v: Any) -> Any:
        """The real value of a vals value."""
        return float(v)

    def to_val(self, x: Any) -> Any:
        """The vals value of what hyperopt's point holds for this dimension."""
        return float(x)

    def count(self) -> int:
        """How many values :meth:`grid` lists, without listing them."""
        return len(self.grid())


@dataclasses.dataclass(frozen=True)
class Fixed(Spec):
    """A constant: always in decoded points, never searched."""

    value: Any
    kind = "fixed"

    def real(self, v: Any = None) -> Any:
        return copy.deepcopy(self.value)


@dataclasses.dataclass(frozen=True)
class Branch:
    """A choice option that activates ``space`` (dotted key -> dimension) when chosen."""

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

    @property
    def values(self) -> list[Any]:
        return [o.value if isinstance(o, Branch) else o for o in self.options]

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.options)))

    def key(self, v: Any) -> int:
        return min(max(int(round(float(v))), 0), len(self.options) - 1)

    def real(self, v: Any) -> Any:
        return copy.deepcopy(self.values[self.key(v)])

    def to_val(self, x: Any) -> int:
        x = x.get("value") if self.branched and isinstance(x, Mapping) else x
        for i, option in enumerate(self.values):
            if _lists(option) == _lists(x):  # hyperopt turns lists into tuples
                return i
        raise ValueError(f"{x!r} is not one of the options {self.values}")

    def grid(self) -> list[int]:
        return list(range(len(self.options)))



@dataclasses.dataclass(frozen=True)
class Uniform(Spec):
    """A real number drawn uniformly from ``[low, high]``."""

    low: float
    high: float
    kind, discrete = "uniform", False
    warp = unwarp = staticmethod(float)  # to and from the space the search is uniform in

    def __post_init__(self) -> None:
        _numbers(self, ("low", "high"))
        if self.kind == "loguniform" and self.low <= 0:
            raise ConfigError(f"loguniform low must be > 0, got {self.low}; use a positive "
                              "lower bound such as 1e-5")
        if self.low >= self.high:
            raise ConfigError(f"{self.kind} low must be < high, got [{self.low}, {self.high}]; "
                              "swap the bounds, or use {fixed: value} for a constant")
        if not math.isfinite(self.warp(self.high) - self.warp(self.low)):
            raise ConfigError(f"{self.kind} range [{self.low}, {self.high}] is wider than a "
                              "float can hold; narrow it")

    def sample(self, rng: np.random.Generator) -> float:
        return self.real(self.unwarp(rng.uniform(self.warp(self.low), self.warp(self.high))))

    def real(self, v: Any) -> float:
        return min(max(float(v), self.low), self.high)



@dataclasses.dataclass(frozen=True)
class LogUniform(Uniform):
    """A positive number whose logarithm is uniform; ``low`` and ``high`` are real values."""

    kind = "loguniform"
    warp, unwarp = staticmethod(math.log), staticmethod(math.exp)


@dataclasses.dataclass(frozen=True)
class QUniform(Spec):
    """A multiple of ``q`` in ``[low, high]``; an int when bounds and ``q`` are ints."""

    low: float
    high: float
    q: float
    kind = "quniform"

    def __post_init__(self) -> None:
        _numbers(self, ("low", "high", "q"))
        if self.q <= 0:
            raise ConfigError(f"quniform q must be > 0, got {self.q}; use a positive step")
        if self.low >= self.high:
            raise ConfigError(f"quniform low must be < high, got [{self.low}, {self.high}]; "
                              "swap the bounds")
        for name in ("low", "high"):
            k = getattr(self, name) / self.q
            if not abs(k) <= MAX_STEPS:  # inf too: a q so small the division overflows
                raise ConfigError(f"quniform q {self.q} is too small for {name} "
                                  f"{getattr(self, name)}: more than 2**53 steps from 0; "
                                  "use a larger q, or uniform")
            if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
                raise ConfigError(
                    f"quniform {name} {getattr(self, name)} is not a multiple of q {self.q}; "
                    f"hyperopt rounds samples to multiples of q, so use e.g. "
                    f"{_tidy(math.floor(k) * self.q)} or {_tidy(math.ceil(k) * self.q)}")

    @property
    def index_range(self) -> tuple[int, int]:
        return round(self.low / self.q), round(self.high / self.q)

    def value_of(self, k: int) -> float | int:
        lo, hi = self.index_range
        x = min(max(k, lo), hi) * self.q
        integral = all(isinstance(b, int) for b in (self.low, self.high, self.q))
        return int(round(x)) if integral else _tidy(x)

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

    def count(self) -> int:
        lo, hi = self.index_range
        return hi - lo + 1



@dataclasses.dataclass(frozen=True)
class IntRange(Spec):
    """An integer among ``low, low + step, ...`` up to ``high`` (both ends included)."""

    low: int
    high: int
    step: int = 1
    kind = "int"

    def __post_init__(self) -> None:
        _numbers(self, ("low", "high", "step"), integer=True)
        if self.step <= 0:
            raise ConfigError(f"int step must be > 0, got {self.step}; use a positive step")
        if self.low > self.high:
            raise ConfigError(f"int low must be <= high, got [{self.low}, {self.high}]; "
                              "swap the bounds")
        if self.size > MAX_STEPS:
            raise ConfigError(f"int [{self.low}, {self.high}] has {self.size} values, more than "
                              "2**53 (what a search can index); narrow it or raise the step")

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.integers(self.size))

    def key(self, v: Any) -> int:
        return min(max(int(round(float(v))), 0), self.size - 1)

    def real(self, v: Any) -> int:
        return self.low + self.step * self.key(v)

    def to_val(self, x: Any) -> float:
        return (float(x) - self.low) / self.step

    def grid(self) -> list[float]:
        return [float(k) for k in range(self.size)]

    def count(self) -> int:
        return self.size



@dataclasses.dataclass(frozen=True)
class Dimension:
    """One entry of a built space.

    Attributes:
        name: The dotted config key it sets.
        label: Its unique hyperopt label.
        spec: Its distribution (:class:`Choice`, :class:`Uniform`, ...).
        condition: ``(choice label, branch value)`` pairs under which it is active.
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
    if isinstance(raw, Mapping) and "subset" in raw:
        return _parse_subset(raw)
    if not isinstance(raw, Mapping) or len(raw) != 1:
        known = [k for k in raw if k in KINDS] if isinstance(raw, Mapping) else []
        if known:
            raise ConfigError(f"'{known[0]}' has extra keys {sorted(set(raw) - {known[0]})}; "
                              "give one type per entry")
        raise ConfigError(f"expected one of {{{'|'.join(KINDS)}: ...}}, got {raw!r}; write "
                          "{fixed: ...} for a constant mapping")
    ((kind, args),) = raw.items()
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
    forms = {"quniform": ["low, high, q"], "int": ["low, high", "low, high, step"]}
    forms = forms.get(kind, ["low, high"])
    if not isinstance(args, list) or len(args) not in [f.count(",") + 1 for f in forms]:
        raise ConfigError(f"{kind} takes {' or '.join(f'[{f}]' for f in forms)}, got {args!r}")
    cls = {"uniform": Uniform, "loguniform": LogUniform, "quniform": QUniform, "int": IntRange}
    return cls[kind](*args)


def _parse_subset(raw: Mapping) -> Subset:
    extra = sorted(str(k) for k in raw if k not in ("subset", "min", "max"))
    if extra:
        raise ConfigError(f"subset has unknown key '{extra[0]}'; write "
                          "{subset: [x1, x2, ...], min: 1, max: 2} (min and max optional)")
    return Subset(raw["subset"], raw.get("min", 1), raw.get("max"))


def _parse_option(option: Any) -> Any:
    if not isinstance(option, Mapping):
        return option
    if "value" in option:
        return Branch(option["value"], {k: v for k, v in option.items() if k != "value"})
    if any("." in str(k) for k in option):
        raise ConfigError(f"option {dict(option)!r} has dotted keys like a branch but no "
                          "'value'; add e.g. value: mlp")
    return option


def _lists(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return {k: _lists(v) for k, v in x.items()} if isinstance(x, Mapping) else x


@dataclasses.dataclass(frozen=True)
class Subset(Spec):
    """A subset of the named ``columns`` with ``min`` to ``max`` members (YAML
    ``{subset: [x1, x2, ...], min: 1, max: 3}``); its real value is a tuple of names in the
    listed order (list the columns in the dataset's order).

    Its vals value is the subset's index among all allowed subsets, ordered by size, then
    lexicographically by column position (so ``grid`` lists the smallest subsets first); to
    hyperopt it is one categorical (``randint``), so tpe, random and anneal search it, grid
    enumerates it and genetic mutates it column by column (:meth:`flip`, :meth:`cross`).
    """

    columns: Sequence[str]
    min: int = 1
    max: Any = None
    kind = "subset"

    def __post_init__(self) -> None:
        cols = self.columns
        if not isinstance(cols, (list, tuple)) or not cols:
            raise ConfigError(f"subset takes a non-empty list of column names, got {cols!r}")
        bad = [c for c in cols if not isinstance(c, str) or not c]
        if bad:
            raise ConfigError(f"subset column {bad[0]!r} is not a column name; list names "
                              "such as [x1, x2]")
        dup = [c for i, c in enumerate(cols) if c in cols[:i]]
        if dup:
            raise ConfigError(f"subset lists column '{dup[0]}' twice; list each column once")
        object.__setattr__(self, "columns", tuple(cols))
        n = len(cols)
        if self.max is None:
            object.__setattr__(self, "max", n)
        _numbers(self, ("min", "max"), integer=True)
        if not 1 <= self.min <= n:
            raise ConfigError(f"subset min is {self.min} but there are {n} columns; use a min "
                              f"between 1 and {n}")
        if not self.min <= self.max <= n:
            raise ConfigError(f"subset max is {self.max}; use a max between min ({self.min}) "
                              f"and the number of columns ({n})")
        if self.size > MAX_STEPS:
            raise ConfigError(f"subset of {n} columns has more than 2**53 subsets; list fewer "
                              "columns or narrow min/max")

    @property
    def size(self) -> int:
        n = len(self.columns)
        return sum(math.comb(n, k) for k in range(self.min, self.max + 1))

    def key(self, v: Any) -> int:
        return min(max(int(round(float(v))), 0), self.size - 1)

    def real(self, v: Any) -> tuple[str, ...]:
        return tuple(self.columns[i] for i in self.positions(v))

    def to_val(self, x: Any) -> float:
        if isinstance(x, (list, tuple)):
            return float(self.index_of(x))
        return float(x)  # hyperopt's point holds the index

    def grid(self) -> list[float]:
        return [float(k) for k in range(self.size)]

    def count(self) -> int:
        return self.size

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.integers(self.size))

    def positions(self, v: Any) -> tuple[int, ...]:
        """The chosen columns' positions (ascending) of a vals value."""
        n, r = len(self.columns), self.key(v)
        k = self.min
        while r >= math.comb(n, k):
            r -= math.comb(n, k)
            k += 1
        out, start = [], 0
        for i in range(k):  # the r-th combination of k positions, lexicographically
            for p in range(start, n):
                below = math.comb(n - 1 - p, k - 1 - i)
                if r < below:
                    out.append(p)
                    start = p + 1
                    break
                r -= below
        return tuple(out)

    def index_of(self, chosen: Any) -> int:
        """The vals value of a subset given by names or by ascending positions."""
        pos = sorted(self.columns.index(c) if isinstance(c, str) else int(c) for c in chosen)
        n, k = len(self.columns), len(pos)
        if not self.min <= k <= self.max or len(set(pos)) != k:
            raise ValueError(f"{list(chosen)} is not a subset of {self.min}..{self.max} of "
                             f"{list(self.columns)}")
        r = sum(math.comb(n, j) for j in range(self.min, k))
        start = 0
        for i, p in enumerate(pos):
            r += sum(math.comb(n - 1 - q, k - 1 - i) for q in range(start, p))
            start = p + 1
        return r

    def flip(self, v: Any, rng: np.random.Generator) -> float:
        """A neighbour: one column added or dropped (swapped for another at a size bound)."""
        n, chosen = len(self.columns), set(self.positions(v))
        if self.size == 1:
            return float(self.key(v))
        while True:
            p = int(rng.integers(n))
            new = chosen ^ {p}
            if not self.min <= len(new) <= self.max:  # swap: drop/add one more the other way
                others = [q for q in range(n) if (q in chosen) != (p in chosen)]
                if not others:
                    continue
                new ^= {others[int(rng.integers(len(others)))]}
            if self.min <= len(new) <= self.max and new != chosen:
                return float(self.index_of(new))

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> float:
        """Uniform crossover: each column from either parent, repaired to ``min``..``max``."""
        pa, pb = set(self.positions(a)), set(self.positions(b))
        chosen = {p for p in range(len(self.columns))
                  if (p in pa if rng.random() < 0.5 else p in pb)}
        union, common = sorted(pa | pb), pa & pb
        while len(chosen) < self.min:
            pool = [p for p in union if p not in chosen] or \
                [p for p in range(len(self.columns)) if p not in chosen]
            chosen.add(pool[int(rng.integers(len(pool)))])
        while len(chosen) > self.max:
            pool = [p for p in chosen if p not in common] or sorted(chosen)
            chosen.discard(pool[int(rng.integers(len(pool)))])
        return float(self.index_of(chosen))


def check_subsets(dimensions: Sequence[Dimension], feature_names: Sequence[str]) -> None:
    """Refuse a ``data.feature_columns`` subset naming a column the dataset lacks (one line,
    before any trial), rather than a search whose every trial fails on it."""
    for d in dimensions:
        if isinstance(d.spec, Subset):
            unknown = [c for c in d.spec.columns if c not in feature_names]
            if unknown or not feature_names:
                raise ConfigError(
                    f"space entry '{d.label}': subset column '{(unknown or d.spec.columns)[0]}' "
                    f"is not among the dataset's named features {list(feature_names)}; "
                    "pick from those")
