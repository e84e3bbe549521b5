"""The ``barrier`` launcher: the ranks as one Spark barrier stage of ``num_proc`` tasks.

Spark starts all the tasks together or none (``rdd.barrier().mapPartitions``); each runs
:func:`sparkdl_tune.executor.barrier.task` (its rank is its partition). When one task fails
Spark aborts the stage and stops the others, and ``collect`` raises with the failed task in
the message ("barrier task ResultTask(0, 1) finished unsuccessfully"): that task's index is the
rank to blame, and our own line (``sparkdl_tune rank 1 failed: ...``) says how it ended. No
rank is left waiting on a dead peer.
"""

from __future__ import annotations

import re

from ...errors import FatalError
from ...spec.job import TrainJob
from ...spec.result import TrainResult
from . import check_slots, log, replace

_TASK = re.compile(r"barrier task ResultTask\(\d+, (\d+)\) finished unsuccessfully")
_OWN = re.compile(r"sparkdl_tune rank (\d+) failed: (.*)")
STOPPED_BY = "Spark aborted the barrier stage"


def train(spark, job: TrainJob, start_timeout: int = 120) -> TrainResult:
    """Run ``job`` on ``num_proc`` barrier tasks; rank 0's result (every rank's report in
    ``extra["ranks"]``)."""
    from ...executor.barrier import task

    check_slots(spark, job.num_proc)
    log.info("train: %s on a barrier stage of %d Spark tasks (%d TensorFlow threads each)",
             job.backend, job.num_proc, job.threads)
    job = replace(job, in_process=False)
    sc = spark.sparkContext
    rdd = sc.parallelize(range(job.num_proc), job.num_proc).barrier()
    try:
        outcomes = rdd.mapPartitions(lambda it: task(job, it)).collect()
    except Exception as exc:  # Py4JJavaError / PythonException with Spark's message
        raise FatalError(describe_failure(str(exc), job.num_proc)) from exc
    outcomes.sort(key=lambda o: o[0].rank)
    result = next(r for _, r in outcomes if r is not None)
    result.extra["ranks"] = [rep.__dict__ for rep, _ in outcomes]
    return result


def describe_failure(text: str, ranks: int) -> str:
    """One line: the rank whose task failed first, how it ended, and the others' fate."""
    task = _TASK.search(text)
    own = _OWN.search(text)
    if own and (task is None or task.group(1) == own.group(1)):
        rank, how = int(own.group(1)), own.group(2).strip()
    elif task:
        rank, how = int(task.group(1)), _last_error(text)
    else:
        return f"tf.distribute training failed: {_last_error(text)}"
    if not how.startswith("ended without"):
        how = f"raised {how}" if not how.startswith("raised") else how
    others = [r for r in range(ranks) if r != rank]
    text = f"tf.distribute training failed: rank {rank} failed first: {how}"
    if others:
        who = ("rank " if len(others) == 1 else "ranks ") + ", ".join(map(str, others))
        text += (f"; {who} {'was' if len(others) == 1 else 'were'} stopped because of it "
                 f"({STOPPED_BY})")
    return text


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if re.search(r"(Error|Exception)\b", ln) and "at " not in ln[:4]]
    return (lines[-1] if lines else text.strip().splitlines()[0] if text.strip() else "?")[:400]
