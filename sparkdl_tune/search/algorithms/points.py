"""What the package's algorithms read of the attempts already in the store: the points seen so
far (:class:`~sparkdl_tune.search.engines.protocol.Attempt`, whichever engine holds them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def seen_keys(space: Any, attempts: Iterable[Any]) -> set:
    """Identities of the points already tried or running (points of another space are
    skipped)."""
    keys = set()
    for attempt in attempts:
        try:
            keys.add(space.vals_key(attempt.point()))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return keys
