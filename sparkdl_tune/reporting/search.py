"""A finished (or running) search as MLflow holds it, and what the report computes from it.

Driver side. The parent run carries ``search.metric``/``mode``/``algorithm``/``space``
params and the current budget (tag ``sparkdl_tune.max_trials``); each trial is a child run
(see :mod:`sparkdl_tune.search.monitor`); the final retrain is a child tagged
``sparkdl_tune.kind=final``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..config.schema import MlflowSettings
from ..errors import ConfigError
from ..search.direction import mode_of
from ..tracking.layout import (
    KIND_FINAL,
    KIND_SEARCH,
    KIND_TRIAL,
    TAG_EXECUTION_MODE,
    TAG_KIND,
    TAG_MAX_TRIALS,
    TAG_SEARCH,
    TAG_TRIAL,
    TrialRun,
)

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Trial:
    """One trial as MLflow recorded it; ``params`` keep MLflow's strings."""

    number: int
    ok: bool
    params: dict[str, str]
    objective: Optional[float]
    seconds: float
    epochs: int
    test: dict[str, float]
    failure: Optional[str]
    run_id: str
    curves: dict[str, list[float]] = field(default_factory=dict)
    cancelled: bool = False  # stopped by the search's own timeout or stop rule (KILLED)
    status: str = "finished"  # finished | pruned | failed | cancelled | running
    pruned_epoch: Optional[int] = None  # stopped by the scheduler after this epoch
    rung: Optional[int] = None  # the highest scheduler rung (epochs) it reached
    validation: dict[str, float] = field(default_factory=dict)  # val_* at the last epoch
    cv: Optional[tuple[float, int]] = None  # search.cv_folds: (std of the fold scores, k)


@dataclass
class Search:
    """A search's parent run, its trials in trial order (one per number: the latest run of a
    trial that a resume ran again) and its final retrain (or None)."""

    name: str
    run_id: str
    metric: str
    mode: str
    algorithm: str
    execution_mode: str
    kinds: dict[str, str]
    trials: list[Trial]
    final: Optional[dict[str, Any]]
    curve_keys: list[str] = field(default_factory=list)
    study: dict[str, Any] = field(default_factory=dict)  # the designs' record (study.json)
    bounds: dict[str, Any] = field(default_factory=dict)  # numeric dimensions' ranges
    max_trials: Optional[int] = None  # the budget now (search.resume=extend raises it)

    @property
    def ok(self) -> list[Trial]:
        return [t for t in self.trials if t.ok and t.objective is not None]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok and not t.cancelled]

    @property
    def cancelled(self) -> list[Trial]:
        return [t for t in self.trials if t.cancelled]

    @property
    def pruned(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "pruned"]

    @property
    def best(self) -> Optional[Trial]:
        """As the search chose it: the best trial that trained its full epochs (a pruned one
        only when none did)."""
        sign = -1 if self.mode == "max" else 1
        full = [t for t in self.ok if t.status != "pruned"] or self.ok
        return min(full, key=lambda t: (sign * t.objective, t.number), default=None)

    def rung_table(self) -> list[tuple[int, int, int]]:
        """(rung in epochs, trials that reached it, trials stopped there), lowest rung
        first; empty when no scheduler recorded rungs."""
        rungs = sorted({t.rung for t in self.trials if t.rung is not None})
        return [(r, sum(1 for t in self.trials if t.rung is not None and t.rung >= r),
                 sum(1 for t in self.pruned if t.rung == r)) for r in rungs]

    @property
    def val_key(self) -> Optional[str]:
        """A second validation metric for the trial tables: ``val_loss`` beside another
        objective, else the first other ``val_*`` recorded (trials are compared on
        validation only)."""
        keys = sorted({k for t in self.ok for k in t.validation} - {self.metric})
        if "val_loss" in keys and self.metric != "val_loss":
            return "val_loss"
        return keys[0] if keys else None

    @property
    def test_key(self) -> Optional[str]:
        """``test_accuracy`` for ``val_accuracy``; else the first test metric recorded."""
        keys = sorted({k for t in self.ok for k in t.test})
        wanted = "test_" + self.metric.removeprefix("val_")
        return wanted if wanted in keys else (keys[0] if keys else None)


@dataclass
class Param:
    """A hyper-parameter that varied over the finished trials. ``values`` align with
    :attr:`Search.ok`: floats, or strings for a categorical one; None where absent (a key of
    a conditional branch that was not chosen)."""

    name: str
    numeric: bool
    log: bool
    values: list[Any]


def find_parent(settings: MlflowSettings, search: str):
    """The parent run of the search called ``search``, or with that run id.

    Raises:
        ConfigError: No such search; the message lists the searches that exist.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ..tracking import store as tracking
    from ..tracking.resume import find_search

    tracking.check_reachable(settings)  # in seconds, not after MLflow's minutes of retries
    run = find_search(settings, search)  # also points MLflow at the store
    if run is None and _RUN_ID.match(search):
        try:
            run = MlflowClient().get_run(search)
        except MlflowException:
            run = None
        if run is not None and run.data.tags.get(TAG_KIND) != KIND_SEARCH:
            raise ConfigError(f"run {search} is not a search's parent run (its {TAG_KIND} tag "
                              f"is {run.data.tags.get(TAG_KIND)!r}); pass the search's name or "
                              "its parent run id")
    if run is None:
        names = sorted({r.data.tags.get(TAG_SEARCH, "?")
                        for r in tracking.find_runs(settings, {TAG_KIND: KIND_SEARCH})})
        known = (f"searches there: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}"
                 if names else "it holds no search yet")
        raise ConfigError(
            f"no search named {search!r} in MLflow experiment {settings.experiment!r} at "
            f"{tracking.redact(tracking.tracking_uri(settings))}; {known} (MLflow UI filter: "
            f"tags.`{TAG_KIND}` = 'search'); another experiment: mlflow.experiment=<name>")
    return run


def load_search(settings: MlflowSettings, search: str) -> Search:
    """Read the parent run, every trial (with per-epoch curves) and the final run."""
    import mlflow
    from mlflow import MlflowClient

    from ..tracking import store as tracking
    from ..tracking.results import final_details, space_bounds

    parent = find_parent(settings, search)
    client = MlflowClient()
    p, tags = parent.data.params, parent.data.tags
    metric = p.get("search.metric", "objective")
    mode = p.get("search.mode") or mode_of(metric)
    children = mlflow.search_runs(
        [parent.info.experiment_id], output_format="list", max_results=50_000,
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    latest, final = {}, None
    for run in children:  # newest first
        kind = run.data.tags.get(TAG_KIND)
        if kind == KIND_TRIAL:
            number = int(run.data.tags.get(TAG_TRIAL, 0))
            if number not in latest or _state(run) > _state(latest[number]):
                latest[number] = run  # a resume reruns a cancelled trial under its number
        elif kind == KIND_FINAL and final is None:
            m = run.data.metrics
            final = {"run_id": run.info.run_id, "seconds": m.get("wall_seconds"),
                     "test": {k: v for k, v in m.items() if k.startswith("test_")}}
            final.update(final_details(run))  # evaluation.json, the model and how to load it
    trials = [_trial(latest[n]) for n in sorted(latest)]  # one row per trial number
    recorded = {k for run in latest.values() if run.info.status == "FINISHED"
                for k in run.data.metrics}
    curve_keys = [k for k in (metric, "val_loss" if metric != "val_loss" else "loss")
                  if k in recorded]
    for t in trials:
        if t.ok:
            t.curves = {k: [m.value for m in sorted(client.get_metric_history(t.run_id, k),
                                                    key=lambda m: m.step)]
                        for k in curve_keys}
    try:
        kinds = json.loads(p.get("search.space") or "{}")
    except ValueError:
        kinds = {}
    return Search(name=tags.get(TAG_SEARCH, parent.info.run_name), run_id=parent.info.run_id,
                  metric=metric, mode=mode, algorithm=p.get("search.algorithm", "?"),
                  execution_mode=tags.get(TAG_EXECUTION_MODE, "?"), kinds=kinds,
                  trials=trials, final=final, curve_keys=curve_keys,
                  study=tracking.read_study(parent.info.run_id),
                  bounds=space_bounds(parent.info.run_id),
                  max_trials=_int(tags.get(TAG_MAX_TRIALS) or p.get("search.max_trials")))


def varied_params(search: Search) -> list[Param]:
    """The hyper-parameters that took more than one value over the finished trials.

    Numeric when every present value parses as a finite number; otherwise categorical, each
    value its MLflow string (a list such as ``[16, 8]`` included). Log scale for a
    ``loguniform`` dimension, or, when the space is unknown, positive values spanning 100x.
    """
    ok = search.ok
    params = []
    for name in sorted({k for t in ok for k in t.params}):
        values = [_number(t.params.get(name)) for t in ok]
        present = [v for v in values if v is not None]
        if len({str(v) for v in present}) < 2:
            continue
        numeric = all(isinstance(v, float) for v in present)
        if not numeric:
            values = [None if v is None else str(t.params[name]) for v, t in zip(values, ok)]
        kind = search.kinds.get(name)
        log = numeric and min(present) > 0 and (
            kind == "loguniform" or (kind is None and max(present) / min(present) >= 100))
        params.append(Param(name, numeric, log, values))
    return params


def importance(search: Search, params: list[Param]) -> list[tuple[str, float, str]]:
    """(name, score in [0, 1], ``"spearman"`` or ``"eta2"``), most important first.

    Numeric: |Spearman rank correlation| with the objective (sees monotone relations only).
    Categorical: η², the share of the objective's variance explained by the category means
    (it is inflated when categories are many and trials few). Needs 3 trials with the value.
    """
    import numpy as np

    y_all = np.array([t.objective for t in search.ok], dtype=float)
    rows = []
    for p in params:
        keep = [i for i, v in enumerate(p.values) if v is not None]
        if len(keep) < 3:
            continue
        y = y_all[keep]
        if p.numeric:
            x = np.array([p.values[i] for i in keep], dtype=float)
            score, measure = abs(_pearson(_ranks(x), _ranks(y))), "spearman"
        else:
            groups: dict[str, list[float]] = {}
            for i, yi in zip(keep, y):
                groups.setdefault(p.values[i], []).append(float(yi))
            total = float(((y - y.mean()) ** 2).sum())
            between = sum(len(g) * (np.mean(g) - y.mean()) ** 2 for g in groups.values())
            score, measure = (float(between) / total if total > 0 else 0.0), "eta2"
        rows.append((p.name, min(max(score, 0.0), 1.0), measure))
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def _trial(run) -> Trial:
    t = TrialRun(run)
    return Trial(number=t.number, ok=t.ok, params=t.params, objective=t.objective,
                 seconds=t.seconds, epochs=t.epochs, test=t.test, failure=t.failure,
                 run_id=t.run_id, cancelled=t.status == "cancelled", status=t.status,
                 pruned_epoch=t.pruned_epoch, rung=t.rung,
                 validation={k: v for k, v in run.data.metrics.items() if k.startswith("val_")},
                 cv=_cv(run.data.metrics))


def _state(run) -> tuple[bool, int, int]:
    """How a run ranks among the runs of one trial number (the highest is the trial's state):
    one a resume keeps (finished, pruned, failed) over one it runs again (cancelled by the
    clock, or running when the search died: see :mod:`sparkdl_tune.tracking.resume`, which
    may also renumber a kept one onto a cancelled one's number), then the later."""
    return (run.info.status not in ("KILLED", "RUNNING"), run.info.start_time or 0,
            run.info.end_time or 0)


def _cv(metrics: dict[str, float]) -> Optional[tuple[float, int]]:
    """A cross-validated trial's (std of its fold scores, folds); its objective is the mean."""
    std = next((v for k, v in metrics.items() if k.startswith("cv_std_")), None)
    return None if std is None else (std, int(metrics.get("cv_folds", 0)))


def _int(text: Optional[str]) -> Optional[int]:
    """A param or tag string as an int; None when absent or not one."""
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _number(text: Optional[str]) -> Any:
    """A param string as a finite float when it is one, else the string; None if absent."""
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _ranks(x):
    """Ranks 1..n, ties sharing their average rank (as Spearman's correlation needs)."""
    import numpy as np

    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


def _pearson(a, b) -> float:
    import numpy as np

    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0
