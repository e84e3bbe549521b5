"""A genetic algorithm: :class:`Genetic`, a :class:`~sparkdl_tune.search.engines.protocol.Proposer`.

The first ``population`` trials are random points. Every later point is bred from the finished,
successful trials (failed trials and NaN losses are never parents):

* the *breeding pool* is the latest ``population`` successful trials (the current generation)
  plus the ``elitism`` best trials ever, so elites always stay eligible parents; nobody is
  re-evaluated to "carry them forward";
* each parent is the best of ``tournament_size`` pool members drawn at random (with two
  objectives: the one on the earlier non-dominated front, then the less crowded: NSGA-II);
* with probability ``crossover_rate`` the child takes each dimension from either parent
  (uniform crossover), else it copies the first parent;
* each dimension then mutates with probability ``mutation_rate``: a choice switches to another
  option; a number either re-samples (1 time in 4) or takes a gaussian step of
  ``mutation_scale`` times its range (in log space for loguniform), clipped to the bounds;
  int and quniform move by at least one step; a feature subset gains or loses one column
  (or swaps one at its size bound), and crossover mixes two subsets column by column;
* a child equal to a point already in the store (or bred in the same call) is bred again;
  after 10 such tries the mutation rate rises to 0.5, after 20 the child is a random point,
  so no evaluation is wasted on a known point while new ones can still be found.

Nested choices: a branch's sub-dimensions only mix when both parents chose the same branch;
otherwise the child inherits the whole branch, sub-dimensions included, from the parent that
gave the choice. A mutation that switches branch samples the new branch's sub-dimensions.

Nothing is kept between calls: the generation, the pool and the random stream all derive from
the store's attempts and the seed (child ``k`` of the search draws from ``[seed, k]``, ``k``
counting the attempts so far), so the proposer pickles small, runs with parallel trials (where
several children are bred from the attempts finished so far) and continues a resumed search.
With ``generations`` set, the search ends after ``population * generations`` trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import ConfigError
from .. import pareto
from ..space import (
    Choice,
    Dimension,
    Fixed,
    IntRange,
    QUniform,
    SearchSpace,
    Subset,
    Uniform,
)
from .points import seen_keys

_RETRIES = 10
_RESAMPLE = 0.25


class Genetic:
    """See the module docstring.

    Args:
        space: The search space.
        population: Random points first, then the size of each generation.
        generations: Stop after this many generations (the random one included); ``None``
            leaves the budget to ``max_trials``.
        mutation_rate: Probability that each dimension of a child mutates.
        crossover_rate: Probability that a child has two parents rather than one.
        tournament_size: Pool members compared to pick each parent.
        elitism: Best trials ever that stay in the breeding pool.
        mutation_scale: Gaussian step as a fraction of a numeric dimension's range.
        seed: Makes the search reproducible regardless of the engine's seed.
    """

    name = "genetic"

    def __init__(self, space: SearchSpace, population: int = 10,
                 generations: int | None = None, mutation_rate: float = 0.2,
                 crossover_rate: float = 0.9, tournament_size: int = 3, elitism: int = 2,
                 mutation_scale: float = 0.2, seed: int | None = None):
        checks = [
            (isinstance(population, int) and population >= 2, "population", population,
             "use 2 or more, e.g. 10"),
            (generations is None or (isinstance(generations, int) and generations >= 1),
             "generations", generations, "use 1 or more, or null for no limit"),
            (0.0 <= mutation_rate <= 1.0, "mutation_rate", mutation_rate,
             "use a rate in [0, 1]"),
            (0.0 <= crossover_rate <= 1.0, "crossover_rate", crossover_rate,
             "use a rate in [0, 1]"),
            (isinstance(tournament_size, int) and tournament_size >= 1, "tournament_size",
             tournament_size, "use 1 or more, e.g. 3"),
            (isinstance(elitism, int) and 0 <= elitism <= population, "elitism", elitism,
             f"use 0 to population ({population})"),
            (0.0 < mutation_scale <= 1.0, "mutation_scale", mutation_scale, "use e.g. 0.2"),
            (seed is None or (isinstance(seed, int) and seed >= 0), "seed", seed,
             "use a non-negative integer or null"),
        ]
        for ok, name, value, fix in checks:
            if not ok:
                raise ConfigError(f"genetic {name} is {value!r}; {fix}")
        self.space, self.population, self.generations = space, population, generations
        self.mutation_rate, self.crossover_rate = mutation_rate, crossover_rate
        self.tournament_size, self.elitism = tournament_size, elitism
        self.mutation_scale, self.seed = mutation_scale, seed

    def propose(self, n: int, store: Any, seed: int) -> list[dict[str, Any]]:
        space = self.space
        attempts = sorted(store.attempts(), key=lambda a: a.number)
        seen = seen_keys(space, attempts)
        pool = breeding_pool(space, attempts, self.population, self.elitism)
        limit = None if self.generations is None else self.population * self.generations
        points = []
        for i in range(n):
            if limit is not None and len(attempts) + i >= limit:
                break
            entropy = [int(seed if self.seed is None else self.seed), len(attempts) + i]
            rng = np.random.default_rng(entropy)
            if len(attempts) + i < self.population or not pool:
                child = _fresh(space, rng, seen)
            else:
                child = _child(space, pool, seen, rng, self.mutation_rate, self.crossover_rate,
                               self.tournament_size, self.mutation_scale)
            seen.add(space.vals_key(child))
            points.append(child)
        return points


def breeding_pool(space: SearchSpace, attempts: Sequence[Any], population: int,
                  elitism: int) -> list[tuple[Any, int, dict[str, Any]]]:
    """``(fitness, number, vals)`` of the latest ``population`` successful attempts plus the
    ``elitism`` fittest ones, in trial order; failed attempts and foreign points are left out.

    The fitness is the loss; when every successful attempt's result carries two ``objectives``
    (``search.objectives``, see :mod:`sparkdl_tune.search.pareto`) it is NSGA-II's
    ``(front rank, -crowding distance)`` over all of them instead, so tournaments prefer the
    earlier front and, within a front, the less crowded point, and the elites come from the
    first fronts."""
    scored, pairs = [], []
    for attempt in sorted(attempts, key=lambda a: a.number):
        loss, vals = attempt.loss, attempt.point()
        try:
            space.vals_key(vals)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a point of another space, from an older search under the same name
        if loss is not None:
            scored.append((loss, attempt.number, vals))
            pairs.append(_objectives(attempt))
    if scored and all(p is not None for p in pairs):
        ranked = pareto.ranks(pairs)
        scored = [((rank, -distance), number, vals)
                  for (rank, distance), (_, number, vals) in zip(ranked, scored)]
    pool = {number: (loss, number, vals) for loss, number, vals in scored[-population:]}
    pool.update((p[1], p) for p in sorted(scored)[:elitism])
    return sorted(pool.values(), key=lambda p: p[1])


def _objectives(attempt: Any) -> tuple[float, float] | None:
    """The ``(metric as a loss, second objective)`` an attempt's result carries, if finite."""
    pair = (attempt.result or {}).get("objectives")
    try:
        a, b = (float(v) for v in pair)
    except (TypeError, ValueError):
        return None
    return (a, b) if np.isfinite(a) and np.isfinite(b) else None


def _fresh(space: SearchSpace, rng: np.random.Generator, seen: set) -> dict[str, Any]:
    for _ in range(_RETRIES):
        child = space.sample_vals(rng)
        if space.vals_key(child) not in seen:
            break
    return child


def _child(space: SearchSpace, pool: list, seen: set, rng: np.random.Generator,
           mutation_rate: float, crossover_rate: float, tournament_size: int,
           scale: float) -> dict[str, Any]:
    for attempt in range(2 * _RETRIES):
        first = _tournament(pool, tournament_size, rng)
        if rng.random() < crossover_rate:
            child = _crossover(space.root, first, _tournament(pool, tournament_size, rng), rng)
        else:
            child = dict(first)
        # After _RETRIES duplicates, mutate harder to leave the explored neighbourhood.
        rate = mutation_rate if attempt < _RETRIES else max(mutation_rate, 0.5)
        child = _mutate(space, space.root, child, rng, rate, scale)
        if space.vals_key(child) not in seen:
            return child
    return _fresh(space, rng, seen)


def _tournament(pool: list, size: int, rng: np.random.Generator) -> dict[str, Any]:
    picks = rng.choice(len(pool), size=min(size, len(pool)), replace=False)
    return min((pool[i] for i in picks), key=lambda p: (p[0], p[1]))[2]


def _crossover(dims: Sequence[Dimension], a: Mapping, b: Mapping,
               rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dims:
        if isinstance(d.spec, Fixed):
            continue
        src = a if rng.random() < 0.5 else b
        out[d.label] = src[d.label]
        if isinstance(d.spec, Subset):  # column by column
            out[d.label] = d.spec.cross(a[d.label], b[d.label], rng)
        if d.children:
            i = d.spec.key(src[d.label])
            if d.spec.key(a[d.label]) == d.spec.key(b[d.label]):
                out.update(_crossover(d.children[i], a, b, rng))
            else:
                out.update(_copy_active(d.children[i], src))
    return out


def _copy_active(dims: Sequence[Dimension], src: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dims:
        if not isinstance(d.spec, Fixed):
            out[d.label] = src[d.label]
            if d.children:
                out.update(_copy_active(d.children[d.spec.key(src[d.label])], src))
    return out


def _mutate(space: SearchSpace, dims: Sequence[Dimension], vals: Mapping,
            rng: np.random.Generator, rate: float, scale: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dims:
        if isinstance(d.spec, Fixed):
            continue
        old = vals[d.label]
        new = mutate_value(d.spec, old, rng, scale) if rng.random() < rate else old
        out[d.label] = new
        if d.children:
            i = d.spec.key(new)
            if i == d.spec.key(old):
                out.update(_mutate(space, d.children[i], vals, rng, rate, scale))
            else:
                out.update(space.sample_vals(rng, d.children[i]))
    return out


def mutate_value(spec: Any, v: Any, rng: np.random.Generator, scale: float) -> Any:
    """A mutated vals value of one dimension (see the module docstring)."""
    if isinstance(spec, Choice):
        n, i = len(spec.options), spec.key(v)
        return i if n == 1 else int((i + rng.integers(1, n)) % n)
    if isinstance(spec, Subset):  # one column in or out
        return spec.flip(v, rng)
    if isinstance(spec, Uniform):  # LogUniform too: warp/unwarp map to log space
        if rng.random() < _RESAMPLE:
            return spec.sample(rng)
        lo, hi = spec.warp(spec.low), spec.warp(spec.high)
        u = spec.warp(float(v)) + rng.normal(0.0, scale * (hi - lo))
        return spec.real(spec.unwarp(min(max(u, lo), hi)))
    if isinstance(spec, IntRange):
        return float(_step(spec.key(v), 0, spec.size - 1, rng, scale))
    if isinstance(spec, QUniform):
        lo, hi = spec.index_range
        return float(spec.value_of(_step(spec.key(v), lo, hi, rng, scale)))
    raise TypeError(f"cannot mutate a {type(spec).__name__} dimension")


def _step(k: int, lo: int, hi: int, rng: np.random.Generator, scale: float) -> int:
    """Move an index in ``[lo, hi]`` elsewhere: re-sample, or a gaussian step of at least one."""
    if hi == lo:
        return k
    if rng.random() < _RESAMPLE:
        other = int(rng.integers(lo, hi))
        return other + 1 if other >= k else other
    new = min(max(k + int(round(rng.normal(0.0, max(1.0, scale * (hi - lo))))), lo), hi)
    if new == k:  # a zero step, or one clipped at a bound: take one step inwards
        new = k - 1 if k == hi else k + 1 if k == lo else k + int(rng.choice((-1, 1)))
    return new
