"""What the package's algorithms read of the trials already in the store: a trial's point, the
points seen so far, and whether the engine was handed the space the algorithm was built on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import ConfigError


def check_domain(space: Any, domain: Any) -> None:
    """Refuse a ``fmin`` space whose labels differ from the space the algorithm was built on."""
    got, want = set(domain.params), set(space.labels)
    if got != want:
        raise ConfigError(
            f"fmin was given a space with labels {sorted(got)} but the algorithm was built for "
            f"{space.source} with labels {sorted(want)}; pass space_expression(space) of the same "
            "SearchSpace")


def trial_vals(trial: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's point as vals: active labels only, one value each."""
    return {k: v[0] for k, v in trial["misc"]["vals"].items() if len(v)}


def seen_keys(space: Any, docs: Iterable[Mapping[str, Any]]) -> set:
    """Identities of the points already in ``docs`` (points from another space are skipped)."""
    keys = set()
    for doc in docs:
        try:
            keys.add(space.vals_key(trial_vals(doc)))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return keys
