"""One rank, in this process (``num_proc == 1``): no Spark job, nothing to join."""

from __future__ import annotations

from ...executor.worker import run
from ...spec.job import TrainJob
from ...spec.result import TrainResult
from . import log


def train(spark, job: TrainJob, start_timeout: int = 120) -> TrainResult:
    log.info("train: in-process (num_proc=1, %d TensorFlow threads)", job.threads)
    report, result = run(job)
    result.extra["ranks"] = [report.__dict__]
    return result
