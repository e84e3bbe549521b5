"""The search objective: one trial = one training with the trial's hyper-parameters.

In ``parallel`` mode this runs inside a Spark task (the engine ships it to an executor) and
trains in-process there; in ``distributed`` mode it runs on the driver and launches a job of
``execution.num_proc`` ranks on ``execution.backend``. Either way it never raises for a failed
trial: it returns the ``fail`` status (:mod:`~sparkdl_tune.search.engines.protocol`) with the
reason, so the search records it and goes on. With ``search.cv_folds`` a trial is k trainings,
one per fold, and its score their mean (:mod:`sparkdl_tune.search.folds`).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from ..config.schema import Config
from ..driver.materialise import TrainingData
from ..spec.report import ReportTo
from . import pareto
from .engines.protocol import STATUS_FAIL, STATUS_OK
from .space import SearchSpace, to_python


@dataclass(frozen=True)
class TrialSpec:
    """What every trial shares; small and picklable (data travels as file URLs)."""

    base: Config
    data: TrainingData
    space: SearchSpace
    metric: str
    mode: str
    threads: int
    in_spark_task: bool
    report_to: Optional[ReportTo] = None  # the driver's report server (per-epoch reports)
    folds: tuple = ()  # search.cv_folds: one TrainingData per fold (sparkdl_tune.search.folds)
    fold_slots: int = 1  # folds of one trial trained at once
    ranks: Any = None  # distributed mode's warm ranks (driver.launch.warm), never pickled


def evaluate(spec: TrialSpec, point: Any, key: Optional[str] = None) -> dict[str, Any]:
    """Train with ``point`` (vals or the engine's sample: ``SearchSpace.decode`` reads both)
    and return the outcome dict (``status``, ``loss``, ``score``, ...); ``key``
    names the trial in its per-epoch reports (default: a new one)."""
    started = time.time()
    values = spec.space.decode(point)
    key = key or uuid.uuid4().hex
    # where: the Spark task's working directory names the executor (and, on a standalone
    # cluster, the worker) that ran the trial
    base = {"params": to_python(values), "start": started, "where": _where(), "key": key}
    try:
        if spec.folds:  # k trainings, one score: their mean (no per-epoch reports)
            fields = _cross_validate(spec, values)
        else:
            target = spec.report_to.for_trial(key, base["params"]) if spec.report_to else None
            result = _train(spec, values, target)
            fields = {"score": _score(spec, result), "history": result.history,
                      "test_metrics": result.test_metrics, "epochs_run": result.epochs_run,
                      "samples_per_second": result.samples_per_second,
                      "learning_rate": result.learning_rate, "num_proc": result.num_proc,
                      "train_seconds": result.wall_seconds,
                      "launch": result.extra.get("launch"), "extra": result.extra}
        score, extra = fields.pop("score"), fields.pop("extra")
        measured = {k: extra[k] for k in pareto.SECOND_OBJECTIVES if extra.get(k) is not None}
        # the loss the engine learns from: the metric, plus a second objective when one is named
        loss, pair = pareto.trial_loss(spec.base.search, score, spec.mode, measured)
        return {**base, "status": STATUS_OK, "loss": loss, "measures": measured,
                **({"objectives": pair} if pair else {}), "score": score, **fields,
                "threads_per_proc": extra.get("threads_per_proc"),
                "pruned": extra.get("pruned"), "duration": time.time() - started}
    except Exception as exc:  # any failure ends this trial only
        return {**base, "status": STATUS_FAIL, "failure": _reason(exc),
                "duration": time.time() - started}


def _score(spec: TrialSpec, result) -> float:
    """A training's score: the best epoch value of the search metric."""
    history = result.history
    if spec.metric not in history:
        raise KeyError(f"metric {spec.metric!r} is not among the training metrics "
                       f"{sorted(history)}; set search.metric to one of them")
    series = [v for v in history[spec.metric] if not math.isnan(v)]
    if result.extra.get("nan_loss") or not series:
        raise FloatingPointError(f"NaN loss after {result.epochs_run} epochs")
    return max(series) if spec.mode == "max" else min(series)


def _cross_validate(spec: TrialSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The trial's folds, ``spec.fold_slots`` at a time (see :mod:`.folds`)."""
    from . import folds

    if spec.in_spark_task:  # once, before the folds: they share this process's Keras
        _clear_keras_state()
    runs = folds.run_folds(spec.folds, lambda i, data: _train(spec, values, None, data),
                           lambda result: _score(spec, result), spec.fold_slots)
    return folds.combine(runs, spec.metric)


def _train(spec: TrialSpec, values: dict[str, Any], target: Optional[ReportTo],
           data: Optional[TrainingData] = None):
    from dataclasses import replace

    from ..config.loader import with_values
    from ..driver.train import make_job

    cfg = with_values(spec.base, values)
    job = replace(make_job(cfg, data or spec.data, spec.threads, verbose=0, trial=True),
                  report_to=target)
    if spec.in_spark_task:
        from ..executor import worker

        if data is None:  # a fold's training shares the process with the others: no clearing
            _clear_keras_state()
        return worker.run(replace(job, in_process=False))[1]
    if spec.ranks is not None and data is None:  # warm ranks: no launch after the first
        return spec.ranks.train(job)
    from pyspark.sql import SparkSession

    from ..driver.launch import train as launch_train

    # (the active session is per thread: a fold's driver thread has none, the default one)
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    return launch_train(spark, job, start_timeout=cfg.execution.start_timeout)


def _clear_keras_state() -> None:
    """Spark reuses Python workers: drop the previous trial's graph and memory first."""
    import sys

    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.backend.clear_session()


def _reason(exc: BaseException) -> str:
    from .folds import FoldFailed

    if isinstance(exc, FoldFailed):
        return f"fold {exc.fold} of {exc.k}: {_reason(exc.cause)}"
    text = str(exc).strip().splitlines()
    name = type(exc).__name__
    if name in ("ResourceExhaustedError", "MemoryError"):
        name = "out of memory: " + name
    return f"{name}: {text[0][:300]}" if text else name


def _where() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getcwd()}"
