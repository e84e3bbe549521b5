"""What a search engine gives the rest of the package, in plain records: no engine's documents.

An engine is one module under :mod:`sparkdl_tune.search.engines` plus one line in its registry.
The monitor, the live MLflow runs, resume, the report and the package's own algorithms read only
:class:`Attempt` (one trial as the engine holds it now) through a :class:`Store`, and the
package's algorithms propose points through :class:`Proposer` (ask → points, tell → records:
the store's attempts are the told results). Nothing here imports an engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

# an attempt's state
QUEUED, RUNNING, OK, FAILED, CANCELLED = "queued", "running", "ok", "failed", "cancelled"
ENDED = (OK, FAILED, CANCELLED)

# the objective's outcome: {"status": STATUS_OK | STATUS_FAIL, "loss": ..., "score": ..., ...}
STATUS_OK, STATUS_FAIL = "ok", "fail"


@dataclass
class Attempt:
    """One trial as the engine holds it now.

    ``vals`` is the point as labels → ``[value]`` (``[]`` for a label the point leaves inactive),
    the form :meth:`~sparkdl_tune.search.space.SearchSpace.decode` reads and MLflow stores.
    ``state`` is :data:`OK` when the objective returned (even a ``fail`` status: read
    :attr:`loss`), :data:`FAILED` when it raised or its Spark task was lost (``error`` says why),
    :data:`CANCELLED` when the search stopped it."""

    number: int
    state: str
    vals: dict[str, list]
    result: Optional[dict[str, Any]] = None  # what the objective returned
    error: Optional[str] = None  # "type: message", or the lost Spark task's reason
    started: Optional[float] = None  # time.time() when it started running

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def loss(self) -> Optional[float]:
        """The loss of a finished, successful attempt with a finite loss, else ``None``."""
        result = self.result or {}
        if self.state != OK or result.get("status") != STATUS_OK:
            return None
        try:
            loss = float(result["loss"])
        except (KeyError, TypeError, ValueError):
            return None
        return loss if math.isfinite(loss) else None

    def point(self) -> dict[str, Any]:
        """The active labels' values: ``{label: value}``."""
        return {k: v[0] for k, v in self.vals.items() if len(v)}


class Store(Protocol):
    """The live view of a running search that an engine hands to ``watch``."""

    def attempts(self) -> Sequence[Attempt]:
        """Every attempt so far, failed and cancelled ones included, in number order."""

    def stopping(self) -> bool:
        """True once nothing more will finish on its own (timeout, early stop, cancel)."""


class Proposer(Protocol):
    """A package algorithm (grid, genetic, sweep, pyramid): stateless, so it pickles small and a
    resumed search carries on from its restored attempts."""

    def propose(self, n: int, store: Store, seed: int) -> Sequence[Mapping]:
        """At most ``n`` new points as vals (``{label: value}`` of the active labels), given the
        live store (``store.attempts()``: every attempt so far); ``[]`` ends the search (grid
        exhausted). A design waiting for its running step may block, re-reading
        ``store.attempts()`` until they end (or ``store.stopping()``)."""
