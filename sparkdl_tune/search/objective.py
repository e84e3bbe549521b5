"""The hyperopt objective: one trial = one training with the trial's hyper-parameters.

In ``parallel`` mode this runs inside a Spark task (SparkTrials ships it to an executor) and
trains in-process there; in ``distributed`` mode it runs on the driver and launches a Horovod
job. Either way it never raises for a failed trial: it returns hyperopt's ``fail`` status with
the reason, so the search records it and goes on.
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
from .engines.hyperopt import STATUS_FAIL, STATUS_OK
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


def evaluate(spec: TrialSpec, point: Any) -> dict[str, Any]:
    """Train with ``point`` (a hyperopt sample) and return hyperopt's result dict."""
    started = time.time()
    values = spec.space.decode(point)
    key = uuid.uuid4().hex  # names this trial in its per-epoch reports
    # where: the Spark task's working directory names the executor (and, on a standalone
    # cluster, the worker) that ran the trial
    base = {"params": to_python(values), "start": started, "where": _where(), "key": key}
    target = spec.report_to.for_trial(key, base["params"]) if spec.report_to else None
    try:
        result = _train(spec, values, target)
        history = result.history
        if spec.metric not in history:
            raise KeyError(f"metric {spec.metric!r} is not among the training metrics "
                           f"{sorted(history)}; set search.metric to one of them")
        series = [v for v in history[spec.metric] if not math.isnan(v)]
        if result.extra.get("nan_loss") or not series:
            raise FloatingPointError(f"NaN loss after {result.epochs_run} epochs")
        score = max(series) if spec.mode == "max" else min(series)
        measured = {k: result.extra[k] for k in pareto.SECOND_OBJECTIVES
                    if result.extra.get(k) is not None}
        # the loss hyperopt learns from: the metric, plus a second objective when one is named
        loss, pair = pareto.trial_loss(spec.base.search, score, spec.mode, measured)
        return {**base, "status": STATUS_OK, "loss": loss, "measures": measured,
                **({"objectives": pair} if pair else {}),
                "score": score, "history": history, "test_metrics": result.test_metrics,
                "epochs_run": result.epochs_run, "samples_per_second": result.samples_per_second,
                "learning_rate": result.learning_rate, "num_proc": result.num_proc,
                "threads_per_proc": result.extra.get("threads_per_proc"),
                "pruned": result.extra.get("pruned"), "duration": time.time() - started}
    except Exception as exc:  # any failure ends this trial only
        return {**base, "status": STATUS_FAIL, "failure": _reason(exc),
                "duration": time.time() - started}


def _train(spec: TrialSpec, values: dict[str, Any], target: Optional[ReportTo]):
    from dataclasses import replace

    from ..config.loader import with_values
    from ..driver.train import make_job

    cfg = with_values(spec.base, values)
    job = replace(make_job(cfg, spec.data, spec.threads, verbose=0), report_to=target)
    if spec.in_spark_task:
        from ..executor import worker

        _clear_keras_state()
        return worker.run(replace(job, in_process=False))[1]
    from pyspark.sql import SparkSession

    from ..driver.launch import train as launch_train

    return launch_train(SparkSession.getActiveSession(), job,
                        start_timeout=cfg.execution.start_timeout)


def _clear_keras_state() -> None:
    """Spark reuses Python workers: drop the previous trial's graph and memory first."""
    import sys

    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.backend.clear_session()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    name = type(exc).__name__
    if name in ("ResourceExhaustedError", "MemoryError"):
        name = "out of memory: " + name
    return f"{name}: {text[0][:300]}" if text else name


def _where() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getcwd()}"
