"""Search algorithms as suggest functions on hyperopt's protocol.

Hyperopt calls ``algo(new_ids, domain, trials, seed)`` on the driver whenever it wants new
trials; the algorithm returns ``trials.new_trial_docs(...)`` for at most ``len(new_ids)`` points,
or ``[]`` to end the search. Our algorithms keep no state between calls: everything they need
comes from ``trials`` and the seed, so they pickle small, work under ``SparkTrials`` and carry on
when a search resumes with its old trials.

Use :func:`make_algo` to get any algorithm by name; the helpers below turn points given as
hyperopt ``vals`` (see :class:`sparkdl_tune.space.SearchSpace`) into trial documents and back.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..space import to_python

ALGORITHMS = ("tpe", "random", "anneal", "grid", "genetic")

__all__ = ["ALGORITHMS", "make_algo"]


def make_algo(name: str, space: Any = None, **options: Any) -> Callable[..., list]:
    """A picklable suggest function for ``fmin(algo=...)``.

    Args:
        name: One of :data:`ALGORITHMS`.
        space: The :class:`~sparkdl_tune.space.SearchSpace`; required by ``grid`` and
            ``genetic``, which work on its dimensions.
        **options: Passed to the algorithm, e.g. ``n_startup_jobs`` for ``tpe`` or
            ``population`` for ``genetic``.
    """
    if name in ("grid", "genetic"):
        if space is None:
            raise ConfigError(f"algorithm '{name}' needs the search space; pass space=...")
        if name == "grid":
            from . import grid

            if options:
                raise ConfigError(f"algorithm 'grid' takes no options, got {sorted(options)}")
            return grid.make_suggest(space)
        from . import genetic

        return genetic.make_suggest(space, **options)
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(str(name), ALGORITHMS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(ALGORITHMS)}"
        raise ConfigError(f"unknown search algorithm '{name}'; {hint}")
    import hyperopt

    module = {"tpe": hyperopt.tpe, "random": hyperopt.rand, "anneal": hyperopt.anneal}[name]
    return functools.partial(module.suggest, **options) if options else module.suggest


def check_domain(space: Any, domain: Any) -> None:
    """Refuse a ``fmin`` space whose labels differ from the space the algorithm was built on."""
    got, want = set(domain.params), set(space.labels)
    if got != want:
        raise ConfigError(
            f"fmin was given a space with labels {sorted(got)} but the algorithm was built for "
            f"{space.source} with labels {sorted(want)}; pass space.to_hyperopt() of the same "
            "SearchSpace")


def all_trials(trials: Any) -> list[dict]:
    """Every trial document, failed and errored ones included (``trials.trials`` drops errors)."""
    docs = getattr(trials, "_dynamic_trials", None)
    if docs is None:
        return list(trials.trials)
    exp_key = getattr(trials, "_exp_key", None)
    return [t for t in docs if t.get("exp_key") == exp_key]


def trial_vals(trial: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's point as vals: active labels only, one value each."""
    return {k: v[0] for k, v in trial["misc"]["vals"].items() if len(v)}


def ok_loss(trial: Mapping[str, Any]) -> float | None:
    """The loss of a finished, successful trial with a finite loss, else ``None``."""
    from hyperopt import JOB_STATE_DONE, STATUS_OK

    result = trial.get("result") or {}
    if trial.get("state") != JOB_STATE_DONE or result.get("status") != STATUS_OK:
        return None
    loss = result.get("loss")
    try:
        return float(loss) if loss is not None and math.isfinite(float(loss)) else None
    except (TypeError, ValueError):
        return None


def seen_keys(space: Any, docs: Iterable[Mapping[str, Any]]) -> set:
    """Identities of the points already in ``docs`` (points from another space are skipped)."""
    keys = set()
    for doc in docs:
        try:
            keys.add(space.vals_key(trial_vals(doc)))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return keys


def new_trial_docs(domain: Any, trials: Any, new_ids: Sequence[int],
                   points: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Trial documents for ``points`` (vals), in the format ``hyperopt.rand.suggest`` makes."""
    from hyperopt.base import miscs_update_idxs_vals

    labels = list(domain.params)
    docs: list[dict] = []
    for new_id, vals in zip(new_ids, points):
        idxs = {lab: [new_id] if lab in vals else [] for lab in labels}
        values = {lab: [to_python(vals[lab])] if lab in vals else [] for lab in labels}
        misc = {"tid": new_id, "cmd": domain.cmd, "workdir": domain.workdir}
        miscs_update_idxs_vals([misc], idxs, values)
        docs.extend(trials.new_trial_docs([new_id], [None], [domain.new_result()], [misc]))
    return docs
