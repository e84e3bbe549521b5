"""Grid search: every point of a discrete space, once each, in a fixed order.

:class:`Grid` is a :class:`~sparkdl_tune.search.engines.protocol.Proposer`: it proposes the
points of :meth:`SearchSpace.grid_points` in order (first dimension slowest). Which points are
left is read from the store's attempts on every call, never counted in memory, so a resumed
search or a proposer that went through pickle carries on where the attempts stop; a trial that
failed is not retried. When every point has been tried it proposes ``[]`` and the search stops,
even if ``max_trials`` is larger. A continuous dimension is a :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .points import seen_keys


class Grid:
    """See the module docstring; raises ConfigError if ``space`` is continuous."""

    name = "grid"

    def __init__(self, space: Any):
        space.grid_vals()  # fail now, not at the first proposal
        self.space = space

    def propose(self, n: int, store: Any, seed: int) -> Sequence[Mapping]:
        seen = seen_keys(self.space, store.attempts())
        todo = []
        for key, vals in self.space.grid_vals():
            if len(todo) == n:
                break
            if key not in seen:
                todo.append(vals)
        return todo
