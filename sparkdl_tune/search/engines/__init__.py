"""Search engines, by name: ``search.engine`` picks one.

An engine is one module here plus one line in :data:`ENGINES`. Each module has
``ALGORITHMS`` (its own algorithms' names), ``algorithm(name, space, seed, **options)`` (one of
them, opaque to the caller) and ``run(objective, space, algo, ...)``, which drives either its
own algorithm or a package :class:`~.protocol.Proposer`; the rest of the package reads the
running search through :class:`~.protocol.Store` and :class:`~.protocol.Attempt` only. The
modules import their library inside their functions, so :func:`load` is light.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ENGINES = {
    "hyperopt": "sparkdl_tune.search.engines.hyperopt",
    "optuna": "sparkdl_tune.search.engines.optuna",
}
DEFAULT = "hyperopt"
# the package's own algorithms (sparkdl_tune.search.algorithms: Proposers), driven by every engine
PACKAGE_ALGORITHMS = ("grid", "genetic", "sweep", "pyramid")


def load(name: str) -> ModuleType:
    """The engine module of ``search.engine: name``."""
    try:
        path = ENGINES[name]
    except KeyError:
        from ...errors import ConfigError

        raise ConfigError(f"unknown search engine {name!r}; use one of "
                          f"{', '.join(ENGINES)}") from None
    return importlib.import_module(path)
