"""Search engines: the modules that drive a search library, one module each (see
:mod:`.protocol` for what each gives the package), named in :data:`ENGINES`."""

from __future__ import annotations

import importlib

ENGINES = {"hyperopt": "sparkdl_tune.search.engines.hyperopt",
           "optuna": "sparkdl_tune.search.engines.optuna"}


def load(name: str):
    """The engine module ``name`` (a key of :data:`ENGINES`)."""
    return importlib.import_module(ENGINES[name])
