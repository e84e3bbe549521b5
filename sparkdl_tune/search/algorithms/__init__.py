"""The package's search algorithms (grid, genetic, sweep, pyramid): each a proposer
(:class:`~sparkdl_tune.search.engines.protocol.Proposer`), which every engine drives.

The engine calls ``propose(n, store, seed)`` on the driver whenever it wants new trials; the
algorithm returns at most ``n`` points (vals), or ``[]`` to end the search. Our algorithms keep
no state between calls: everything they need comes from the store's attempts and the seed, so
they pickle small, work with parallel trials and carry on when a search resumes with its old
trials. They read plain :class:`~sparkdl_tune.search.engines.protocol.Attempt` records, never
an engine's documents.

Use :func:`make_algo` to get any algorithm by name: the engine's own (opaque here) or one of
the package's.
"""

from __future__ import annotations

import difflib
from typing import Any

from ...errors import ConfigError
from ..engines import PACKAGE_ALGORITHMS

PACKAGE = PACKAGE_ALGORITHMS  # the package's own, driven by every engine
DESIGNS = ("sweep", "pyramid")  # staged designs (see sparkdl_tune.search.algorithms.staged)


def algorithms(engine: str = "hyperopt") -> tuple[str, ...]:
    """Every ``search.algorithm`` name under ``engine``: its own, then the package's."""
    from ..engines import load

    return (*load(engine).ALGORITHMS, *PACKAGE)


ALGORITHMS = algorithms()  # under the default engine

__all__ = ["ALGORITHMS", "DESIGNS", "PACKAGE", "algorithms", "make_algo", "make_design"]


def make_design(name: str, space: Any, **options: Any) -> Any:
    """The staged design ``sweep`` or ``pyramid`` on ``space``, with its options."""
    if name == "sweep":
        from .sweep import Sweep

        return Sweep(space, **options)
    from .pyramid import Pyramid

    return Pyramid(space, **options)


def make_algo(name: str, space: Any = None, engine: str = "hyperopt", **options: Any) -> Any:
    """The algorithm ``name`` for ``engine``'s ``run(algo=...)``: the engine's own (opaque
    here) or one of the package's.

    Args:
        name: One of :func:`algorithms` (``engine``).
        space: The :class:`~sparkdl_tune.search.space.SearchSpace`; required by ``grid`` and
            ``genetic``, which work on its dimensions.
        engine: The ``search.engine`` (:mod:`sparkdl_tune.search.engines`).
        **options: Passed to the algorithm, e.g. ``n_startup_jobs`` for ``tpe`` or
            ``population`` for ``genetic``; ``seed`` goes to the engine's ``algorithm``.
    """
    if name in DESIGNS:
        if space is None:
            raise ConfigError(f"algorithm '{name}' needs the search space; pass space=...")
        from .staged import Staged

        return Staged(make_design(name, space, **options), space)
    if name in ("grid", "genetic"):
        if space is None:
            raise ConfigError(f"algorithm '{name}' needs the search space; pass space=...")
        if name == "grid":
            from .grid import Grid

            if options:
                raise ConfigError(f"algorithm 'grid' takes no options, got {sorted(options)}")
            return Grid(space)
        from .genetic import Genetic

        return Genetic(space, **options)
    known = algorithms(engine)
    if name not in known:
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(known)}"
        raise ConfigError(f"unknown search algorithm '{name}'; {hint}")
    from ..engines import load

    seed = options.pop("seed", 0)
    return load(engine).algorithm(name, space, seed, **options)
