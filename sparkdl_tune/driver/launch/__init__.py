"""Where a training runs: one module per launcher, picked by the job's engine.

``local`` trains in this process (``num_proc == 1``), ``horovod`` runs a ``horovod.spark`` job,
``barrier`` a Spark barrier stage (for ``tf_distribute``); :mod:`sparkdl_tune.spec.engines`
says which launcher an engine uses. Driver side. A failed rank surfaces from every launcher as
one :class:`~sparkdl_tune.errors.FatalError` naming the rank that failed first, never as a
hang. The ranks' output goes to stderr: stdout carries only the command's JSON summary.
"""

from __future__ import annotations

import os

from ... import logs
from ...errors import ConfigError
from ...spec.engines import engine, resolve
from ...spec.job import TrainJob
from ...spec.result import TrainResult

log = logs.get("launch")


def train(spark, job: TrainJob, start_timeout: int = 120) -> TrainResult:
    """Run ``job`` with its engine's launcher; rank 0's result (every rank's report in
    ``extra["ranks"]``)."""
    launcher = resolve(engine(job.backend, job.num_proc).launcher)
    return launcher(spark, job, start_timeout=start_timeout)


def threads_per_proc(spark, num_proc: int, configured: int | None) -> int:
    """TensorFlow threads per rank: the configured value, else local cores shared by ranks."""
    if configured:
        return configured
    cores = os.cpu_count() or 1
    if spark is not None and spark.sparkContext.master.startswith("local"):
        return max(1, cores // num_proc)
    cores_per_task = int(spark.conf.get("spark.task.cpus", "1")) if spark is not None else cores
    return max(1, cores_per_task)


def check_slots(spark, num_proc: int) -> None:
    """More ranks than task slots would wait forever for tasks: refuse before starting."""
    from ..session import slots

    available = slots(spark)
    if num_proc > available:
        raise ConfigError(f"execution.num_proc={num_proc} but the cluster has {available} task "
                          f"slots; lower execution.num_proc to at most {available} or add "
                          "executors")


def replace(job: TrainJob, **changes) -> TrainJob:
    from dataclasses import replace as _replace

    return _replace(job, **changes)
