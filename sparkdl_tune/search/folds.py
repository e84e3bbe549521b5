"""k-fold cross-validation of one trial (``search.cv_folds``): k trainings, one score.

The trial trains one model per fold (:func:`sparkdl_tune.driver.folds.fold_data`: fold ``i``
validates on the ``i``-th fold of train+validation and trains on the rest), at most ``slots``
at a time in threads of the process that runs the trial (the Spark task of a ``parallel``
search, the driver of a ``distributed`` one; a Horovod trial's folds run one after the other,
as Horovod starts jobs only from the driver's main thread).
Each fold is scored like a trial without folds (the best epoch value of ``search.metric``);
the trial's score is the mean of the fold scores, and their standard deviation (population,
``ddof=0``) is recorded beside it. A failed fold fails the trial, naming the fold.

What the trial reports: the mean of the folds' curves per epoch (over the folds that reached
that epoch) as its history, the mean of the folds' test metrics and throughput, the epochs of
all folds together, and per fold its score, epochs, rows and start/end times (``folds``).

Per-epoch reports (schedulers, the live MLflow view) are per training; a trial of k trainings
has none: a cross-validated search runs with ``search.scheduler: fifo`` and its trial runs
appear in MLflow when the trial ends.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..errors import ConfigError

PREFIX = "cv_"  # MLflow metrics of a cross-validated trial: cv_mean_<m>, cv_std_<m>, ...


def check(search) -> None:
    """Settings that cannot go with ``search.cv_folds``: a ConfigError before training."""
    k = search.cv_folds
    if not k:
        return
    if search.scheduler != "fifo":
        raise ConfigError(f"search.cv_folds ({k}) with search.scheduler {search.scheduler}: a "
                          "scheduler judges one training's epochs, a cross-validated trial "
                          f"is {k} trainings; set search.scheduler=fifo or search.cv_folds=null")
    if search.baseline not in (False, None):
        raise ConfigError(f"search.cv_folds ({k}) with search.baseline: the baseline is scored "
                          "on the validation split, the trials on folds, so they do not "
                          "compare; remove search.baseline or search.cv_folds")


def slots_per_trial(k: int, total_slots: int, per_trial: int, horovod: bool = False) -> int:
    """Folds one trial runs at once: the task slots left to each running trial (parallel
    mode: slots // parallelism; distributed: slots // num_proc), 1 to k. A Horovod trial
    (``horovod``: distributed with num_proc > 1) runs its folds one after the other: Horovod
    starts a job only from the driver's main thread."""
    if horovod:
        return 1
    return max(1, min(k, total_slots // max(1, per_trial)))


class FoldFailed(Exception):
    """A fold's training failed: the trial fails, naming the fold and the cause."""

    def __init__(self, fold: int, k: int, cause: BaseException):
        super().__init__(f"fold {fold} of {k}: {cause}")
        self.fold, self.k, self.cause = fold, k, cause


@dataclass
class FoldRun:
    """One fold's training: when it ran and how it ended."""

    fold: int
    start: float
    end: float = 0.0
    result: Any = None  # TrainResult
    score: Optional[float] = None
    error: Optional[BaseException] = None
    rows: dict[str, int] = field(default_factory=dict)


def run_folds(folds: Sequence[Any], train: Callable[[int, Any], Any],
              score: Callable[[Any], float], slots: int) -> list[FoldRun]:
    """Train every fold (``train(i, data)``), ``slots`` at a time; scored with ``score``."""
    def one(i: int, data) -> FoldRun:
        run = FoldRun(i, time.time(), rows={"train": data.rows("train"),
                                             "validation": data.rows("validation")})
        try:
            run.result = train(i, data)
            run.score = score(run.result)
        except Exception as exc:  # the trial reports it, naming the fold
            run.error = exc
        run.end = time.time()
        return run

    if slots <= 1:  # one at a time, in this thread (Horovod starts only from the main one)
        return [one(i, data) for i, data in enumerate(folds)]
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="sparkdl-tune-fold") as pool:
        return list(pool.map(one, range(len(folds)), folds))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def combine_histories(histories: Sequence[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per metric and epoch, the mean over the folds that reached that epoch (NaN kept)."""
    keys = [k for k in histories[0] if all(k in h for h in histories)]
    out = {}
    for key in keys:
        longest = max(len(h[key]) for h in histories)
        out[key] = [sum(vals) / len(vals) for vals in
                    ([h[key][e] for h in histories if e < len(h[key])] for e in range(longest))]
    return out


def _mean_of(dicts: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in dicts[0] if all(isinstance(d.get(k), (int, float)) for d in dicts)]
    return {k: sum(float(d[k]) for d in dicts) / len(dicts) for k in keys}


def combine(runs: Sequence[FoldRun], metric: str) -> dict[str, Any]:
    """The trial's result fields from its folds (see the module docstring); a failed fold
    raises, naming it."""
    for r in runs:
        if r.error is not None:
            raise FoldFailed(r.fold + 1, len(runs), r.error)
    results = [r.result for r in runs]
    scores = [r.score for r in runs]
    mean, std = mean_std(scores)
    extras = [r.extra for r in results]
    cv = {f"{PREFIX}mean_{metric}": mean, f"{PREFIX}std_{metric}": std,
          f"{PREFIX}folds": float(len(runs)),
          **{f"{PREFIX}fold_{r.fold + 1}_{metric}": r.score for r in runs}}
    return {
        "score": mean, "std": std, "cv": cv,
        "history": combine_histories([r.history for r in results]),
        "test_metrics": _mean_of([r.test_metrics for r in results]),
        "epochs_run": sum(r.epochs_run for r in results),
        "samples_per_second": sum(r.samples_per_second for r in results) / len(results),
        "learning_rate": results[0].learning_rate, "num_proc": results[0].num_proc,
        "extra": {**_mean_of([{k: e.get(k) for k in ("params", "epoch_seconds", "latency_ms",
                                                     "threads_per_proc")} for e in extras]),
                  "nan_loss": any(e.get("nan_loss") for e in extras)},
        "folds": [{"fold": r.fold + 1, "score": r.score, "start": round(r.start, 3),
                   "end": round(r.end, 3), "epochs": r.result.epochs_run, **{
                       f"{k}_rows": v for k, v in r.rows.items()},
                   "curve": [_round(v) for v in r.result.history.get(metric, [])]}
                  for r in runs],
    }


def _round(v: float) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(f"{v:.6g}")
