"""What defines a search, so that rerunning its name after an edit is a choice, not an accident.

A search is remembered in MLflow by its name. Rerunning the name resumes it (or, once finished,
reports it); that is only right while it means the same search. So the parent run carries the
search's definition (tag ``sparkdl_tune.definition``): every setting its trials depend on
(the space, the data, the model and training settings, the objective, the algorithm) and its
budget, one flat ``key -> value`` entry each. A rerun whose definition differs stops with exit
code 2 naming what changed and the two ways on: a new ``search.name``, or
``search.resume: extend``, which keeps the finished trials and spends a larger budget (only the
budget may change then: trials measured under other settings are not comparable).

Driver side; plain data only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Optional

from ..errors import ConfigError

BUDGET_KEYS = ("search.max_trials", "search.timeout_minutes",
               "search.stop_after_no_improvement", "search.target")
_SEARCH_KEYS = ("algorithm", "trial_epochs", "seed")
_MAX_VALUE, _MAX_TAG = 200, 7500  # long values are stored as hashes (MLflow's tag limit)


def definition(cfg, space, metric: str, mode: str) -> dict[str, str]:
    """The flat ``key -> value`` (JSON text) of everything that defines ``cfg``'s search."""
    from ..config.loader import as_flat_dict

    s = cfg.search
    items: dict[str, Any] = {
        "data.path": _location(cfg.data.path),
        "data.feature_columns": cfg.data.feature_columns,
        "execution.seed": cfg.execution.seed,
        "search.metric": metric, "search.mode": mode,
    }
    items.update({f"search.{k}": getattr(s, k) for k in _SEARCH_KEYS})
    items.update({k: getattr(s, k.split(".", 1)[1]) for k in BUDGET_KEYS})
    if s.engine != "hyperopt":  # (hyperopt: as recorded before engines could be chosen)
        items["search.engine"] = s.engine
    if s.algorithm == "genetic":
        items.update({f"search.genetic.{k}": v for k, v in dataclasses.asdict(s.genetic).items()})
    if s.algorithm == "nsga2":  # its generation size
        items["search.genetic.population"] = s.genetic.population
    if s.objectives:  # the loss the engine learned from depends on them
        items["search.objectives"] = list(s.objectives)
        items["search.complexity_weight"] = s.complexity_weight
    if s.algorithm in ("sweep", "pyramid"):
        items.update({f"search.{s.algorithm}.{k}": v
                      for k, v in dataclasses.asdict(getattr(s, s.algorithm)).items()})
    if s.cv_folds:  # scores of k folds do not compare with one validation split's
        items["search.cv_folds"] = s.cv_folds
    if s.scheduler != "fifo":  # (fifo: as recorded before schedulers existed)
        items["search.scheduler"] = s.scheduler
        items.update({f"search.pruning.{k}": v for k, v in dataclasses.asdict(s.pruning).items()})
    items.update({f"model.{k}": v for k, v in as_flat_dict(cfg.model).items()})
    items.update({f"training.{k}": v for k, v in as_flat_dict(cfg.training).items()})
    items.update({f"search.space.{d.label}": repr(d.spec) for d in space.dimensions})
    return {k: json.dumps(v, default=_plain, sort_keys=True) for k, v in items.items()}


def to_tag(values: Mapping[str, str]) -> str:
    """The definition as one tag value: long values hashed, all of them if it is still long."""
    short = {k: _short(v, _MAX_VALUE) for k, v in values.items()}
    text = json.dumps(short, sort_keys=True)
    if len(text) > _MAX_TAG:
        text = json.dumps({k: _short(v, 0) for k, v in values.items()}, sort_keys=True)
    return text


def changes(recorded: Optional[str], current: Mapping[str, str]) -> list[str]:
    """``key: old -> new`` for each setting that differs from the recorded tag value.

    A search recorded before definitions were kept (no tag) counts as unchanged.
    """
    if not recorded:
        return []
    try:
        old = json.loads(recorded)
    except ValueError:
        return []
    return [f"{k}: {_shown(old.get(k))} -> {_shown(current.get(k))}"
            for k in sorted(set(old) | set(current)) if not _same(old.get(k), current.get(k))]


def check(name: str, recorded: Optional[str], current: Mapping[str, str], resume: str,
          finished_trials: int) -> list[str]:
    """Refuse a rerun of search ``name`` that means another search; return what changed.

    Raises:
        ConfigError: The definition changed and ``resume`` is not ``extend``, or it is and
            more than the budget changed.
    """
    changed = changes(recorded, current)
    if not changed:
        return []
    keys = [c.split(":", 1)[0] for c in changed]
    listed = "; ".join(changed)
    if resume == "extend":
        beyond = [k for k in keys if k not in BUDGET_KEYS]
        if beyond:
            raise ConfigError(
                f"search.resume=extend keeps the {finished_trials} finished trials of search "
                f"'{name}', so only its budget ({', '.join(BUDGET_KEYS)}) may change, but "
                f"{', '.join(beyond)} changed too ({listed}); set a new search.name to start "
                "another search")
        return changed
    raise ConfigError(
        f"search '{name}' was run with other settings ({listed}); set a new search.name to "
        f"start another search, or, to keep its {finished_trials} finished trials and run the "
        "rest of a larger budget, set search.resume=extend")


def _plain(value: Any) -> Any:
    """JSON for what JSON lacks: a function (``model.builder`` from Python) by what identifies
    it, not by its repr (a memory address that changes with every notebook rerun)."""
    from ..config.model_spec import builder_identity

    return builder_identity(value) if callable(value) else str(value)


def _same(recorded: Optional[str], value: Optional[str]) -> bool:
    if recorded is None or value is None:
        return recorded is value
    if recorded.startswith("sha256:"):  # stored hashed: compare hashes
        return recorded == _short(value, 0)
    return recorded == value


def _location(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _short(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
