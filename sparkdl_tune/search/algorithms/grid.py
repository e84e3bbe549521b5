"""Grid search: every point of a discrete space, once each, in a fixed order.

``fmin(fn, space_expression(space), algo=grid.make_suggest(space), max_evals=...)`` visits
the points of :meth:`SearchSpace.grid_points` in order (first dimension slowest). Which points
are left is read from ``trials`` on every call, never counted in memory, so a resumed search or
a suggest function that went through pickle carries on where the trials stop; a trial that
failed is not retried. When every point has been tried the suggest function returns ``[]`` and
``fmin`` stops, even if ``max_evals`` is larger. A continuous dimension is a :class:`ConfigError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConfigError
from ..engines.hyperopt import new_trial_docs
from ..engines.hyperopt import trial_docs as all_trials
from .points import check_domain, seen_keys


def make_suggest(space: Any) -> Callable[..., list]:
    """A picklable grid suggest function for ``space``; raises ConfigError if it is continuous."""
    space.grid_vals()  # fail now, not at the first call from fmin
    return functools.partial(suggest, space=space)


def suggest(new_ids: Sequence[int], domain: Any, trials: Any, seed: int, *,
            space: Any = None) -> list[dict]:
    """Hyperopt's suggest protocol; ``space`` is bound by :func:`make_suggest`."""
    if space is None:
        raise ConfigError("grid search needs the SearchSpace to enumerate; use "
                          "algo=grid.make_suggest(space)")
    check_domain(space, domain)
    seen = seen_keys(space, all_trials(trials))
    todo = []
    for key, vals in space.grid_vals():
        if len(todo) == len(new_ids):
            break
        if key not in seen:
            todo.append(vals)
    return new_trial_docs(domain, trials, new_ids[: len(todo)], todo)
