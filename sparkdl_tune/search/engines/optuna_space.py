"""A :class:`~sparkdl_tune.search.space.SearchSpace` as Optuna parameters, both ways.

:func:`suggest` walks the dimension tree define-by-run on an ``optuna.trial.Trial`` (from
``study.ask()``) and returns the point as vals (``{label: vals value}``, active labels only,
exactly as :meth:`~sparkdl_tune.search.space.SearchSpace.sample_vals` makes them), so
``space.decode(vals)`` and ``space.vals_key(vals)`` read it. :func:`params` is the inverse:
vals → Optuna params and their distributions, for ``optuna.trial.create_trial`` (restored
trials) and ``study.enqueue_trial`` (points a package algorithm proposed).

One parameter per active dimension, named by its label: a choice is a categorical over its
option indices (a nested choice suggests only the chosen branch's children), uniform and
loguniform a float (``log=True``), quniform a float or int with ``step=q``, int an int with its
step, fixed nothing. A subset is one include/exclude categorical per column
(``<label>[<column>]``), so a model-based sampler can learn that one column matters; a draw
outside the subset's size limits is repaired to the nearest allowed subset (too few: add the
first excluded columns in listed order; too many: drop the last included ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

INCLUDE = (0, 1)  # a subset column's categorical: 0 excluded, 1 included


def distributions(dim) -> list[tuple[str, Any]]:
    """``(param name, Optuna distribution)`` of one dimension (``[]`` for a fixed one)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from ..dimensions import Choice, IntRange, LogUniform, QUniform, Subset, Uniform

    spec = dim.spec
    if isinstance(spec, Choice):
        return [(dim.label, CategoricalDistribution(list(range(len(spec.options)))))]
    if isinstance(spec, Uniform):  # LogUniform too
        log = isinstance(spec, LogUniform)
        return [(dim.label, FloatDistribution(spec.low, spec.high, log=log))]
    if isinstance(spec, QUniform):
        if all(isinstance(b, int) for b in (spec.low, spec.high, spec.q)):
            return [(dim.label, IntDistribution(spec.low, spec.high, step=spec.q))]
        return [(dim.label, FloatDistribution(spec.low, spec.high, step=spec.q))]
    if isinstance(spec, IntRange):
        return [(dim.label, IntDistribution(spec.low, spec.high, step=spec.step))]
    if isinstance(spec, Subset):
        return [(column_param(dim.label, c), CategoricalDistribution(list(INCLUDE)))
                for c in spec.columns]
    return []  # Fixed


def column_param(label: str, column: str) -> str:
    return f"{label}[{column}]"


def suggest(trial, space) -> dict[str, Any]:
    """The point ``trial`` samples, as vals (active labels only)."""
    def pick(dim) -> Any:
        got = [_suggest(trial, name, dist) for name, dist in distributions(dim)]
        return from_params(dim, got)

    return {d.label: v for d, v in _active(space.root, pick) if d.kind != "fixed"}


def params(space, vals: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optuna ``(params, distributions)`` of a point given as vals (``{label: value}`` or
    ``{label: [value]}``)."""
    out, dists = {}, {}

    def pick(dim) -> Any:
        v = vals.get(dim.label)
        v = v[0] if isinstance(v, (list, tuple)) and v else v
        if v is None or (isinstance(v, (list, tuple)) and not v):
            raise ValueError(f"no value for '{dim.label}' in {sorted(vals)}")
        for (name, dist), p in zip(distributions(dim), to_params(dim, v)):
            out[name], dists[name] = p, dist
        return v

    for _ in _active(space.root, pick):
        pass
    return out, dists


def from_params(dim, got: Sequence[Any]) -> Any:
    """The vals value of one dimension from its Optuna params (in :func:`distributions`'
    order)."""
    from ..dimensions import Choice, IntRange, QUniform, Subset

    spec = dim.spec
    if isinstance(spec, Choice):
        return int(got[0])
    if isinstance(spec, IntRange):
        return float(spec.to_val(got[0]))
    if isinstance(spec, QUniform):
        return float(spec.real(got[0]))
    if isinstance(spec, Subset):
        return subset_val(spec, [i for i, g in enumerate(got) if g])
    return float(got[0])


def to_params(dim, v: Any) -> list[Any]:
    """One dimension's Optuna params of its vals value ``v``."""
    from ..dimensions import Choice, IntRange, QUniform, Subset

    spec = dim.spec
    if isinstance(spec, Choice):
        return [spec.key(v)]
    if isinstance(spec, IntRange):
        return [spec.real(v)]
    if isinstance(spec, QUniform):
        x = spec.real(v)
        return [x if isinstance(x, int) else float(x)]
    if isinstance(spec, Subset):
        chosen = set(spec.positions(v))
        return [INCLUDE[i in chosen] for i in range(len(spec.columns))]
    return [float(spec.real(v))]


def subset_val(spec, chosen: Sequence[int]) -> float:
    """The vals value of the included positions ``chosen``, repaired to ``spec.min`` ..
    ``spec.max`` members (too few: the first excluded columns join; too many: the last
    included ones leave)."""
    chosen = sorted(chosen)
    missing = [p for p in range(len(spec.columns)) if p not in chosen]
    while len(chosen) < spec.min:
        chosen.append(missing.pop(0))
    return float(spec.index_of(sorted(chosen)[:spec.max]))


def _suggest(trial, name: str, dist) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _active(dims: Sequence, pick: Callable) -> Iterator[tuple[Any, Any]]:
    """``(dimension, vals value)`` of the active dimensions, ``pick`` giving the values; only
    the chosen branch's children are walked (so only they are suggested)."""
    for d in dims:
        v = None if d.kind == "fixed" else pick(d)
        yield d, v
        if d.children:
            yield from _active(d.children[d.spec.key(v)], pick)
