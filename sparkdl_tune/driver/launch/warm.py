"""Warm ranks: consecutive trainings of a distributed search on one running set of ranks.

Driver side (executor side: :mod:`sparkdl_tune.executor.warm_ranks`). The first training
starts a barrier stage of ``num_proc`` long-lived tasks in a driver thread; each task's rank
process connects back over a token-guarded TCP channel (:mod:`sparkdl_tune.spec.warm`), and
every training sends its job (the same :class:`TrainJob` the ``barrier`` launcher ships) to
all ranks and reads their outcomes back. Only the first training pays for the Spark stage, the
child processes, importing TensorFlow and setting up the strategy; ``extra["launch"]`` of each
result numbers the stage that trained it (1, 2, ...).

A rank that fails or is killed fails its training only: Spark aborts the stage, the failure is
worded as by the ``barrier`` launcher (the rank that failed first), and the next training starts
fresh ranks (a new stage). :meth:`WarmRanks.close` ends the ranks (at the end of the search:
the stage holds ``num_proc`` task slots while it lives).

Distributed trials side by side (``search.parallelism`` > 1 in ``distributed`` mode) keep one
:class:`WarmRanks` per driver thread (:class:`ThreadRanks`): each running trial has its own
stage, and launches are numbered across them.

For ``tf_distribute`` only: Horovod keeps its ``horovod.spark.run`` per trial (warm Horovod
ranks would be the same loop inside the function that call ships, with ``hvd.init`` once per
process, the call itself in a driver thread: possible, not built).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Optional

from ...errors import FatalError
from ...spec.job import TrainJob
from ...spec.result import TrainResult
from . import check_slots, log, replace
from .barrier import describe_failure

STAGE_END_SECONDS = 60.0  # for Spark's error to arrive once a rank's connection dropped


class WarmRanks:
    """``with WarmRanks(spark, start_timeout) as ranks:`` … ``ranks.train(job)`` per trial."""

    def __init__(self, spark, start_timeout: int = 120,
                 numbering: Optional[Callable[[], int]] = None):
        self.spark, self.start_timeout = spark, start_timeout
        self.launches = 0  # stages this object started
        self._numbering = numbering  # the launch's number among several WarmRanks (ThreadRanks)
        self.launch = 0  # the running stage's number
        self._stage: Optional[_Stage] = None

    def __enter__(self) -> WarmRanks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def train(self, job: TrainJob) -> TrainResult:
        """Run ``job`` on the running ranks (started now when there are none, or when the job
        wants another number of them); rank 0's result, as the ``barrier`` launcher's."""
        job = replace(job, in_process=False)
        if self._stage is not None and self._stage.num_proc != job.num_proc:
            self.close()
        if self._stage is None:
            check_slots(self.spark, job.num_proc)
            self.launches += 1
            self.launch = self._numbering() if self._numbering else self.launches
            log.info("train: starting warm ranks (%s on a barrier stage of %d Spark tasks, "
                     "launch %d)", job.backend, job.num_proc, self.launch)
            self._stage = _Stage(self.spark, job.num_proc, self.start_timeout)
        try:
            outcomes = self._stage.run(job)
        except BaseException:
            self._stage.end()  # a failed stage is never reused
            self._stage = None
            raise
        result = next(r for _, r in outcomes if r is not None)
        result.extra["ranks"] = [rep.__dict__ for rep, _ in outcomes]
        result.extra["launch"] = self.launch
        return result

    def close(self) -> None:
        if self._stage is not None:
            self._stage.end()
            self._stage = None


class ThreadRanks:
    """Warm ranks for distributed trials side by side: each driver thread that trains
    (:class:`~sparkdl_tune.search.runners.driver.DriverRunner`'s slots) keeps its own
    :class:`WarmRanks`, so each running trial has its own barrier stage and a thread's next
    trial reuses that thread's ranks."""

    def __init__(self, spark, start_timeout: int = 120):
        self.spark, self.start_timeout = spark, start_timeout
        self._mine = threading.local()
        self._all: list[WarmRanks] = []
        self._lock = threading.Lock()
        self._launched = 0

    def __enter__(self) -> ThreadRanks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def train(self, job: TrainJob) -> TrainResult:
        ranks = getattr(self._mine, "ranks", None)
        if ranks is None:
            ranks = self._mine.ranks = WarmRanks(self.spark, self.start_timeout, self._number)
            with self._lock:
                self._all.append(ranks)
        return ranks.train(job)

    def _number(self) -> int:
        with self._lock:
            self._launched += 1
            return self._launched

    def close(self) -> None:
        with self._lock:
            for ranks in self._all:
                ranks.close()


class _Stage:
    """One barrier stage of warm ranks, and the driver's end of their connections."""

    def __init__(self, spark, num_proc: int, start_timeout: int):
        from ...spec.warm import WarmAddress

        self.spark, self.num_proc = spark, num_proc
        self.token = secrets.token_hex(16)
        self.group = f"sparkdl_tune-warm-{uuid.uuid4().hex[:8]}"
        self._listener = socket.create_server(("", 0))
        self._listener.settimeout(1.0)
        host = spark.sparkContext.getConf().get("spark.driver.host", None) or socket.gethostname()
        address = WarmAddress(host, self._listener.getsockname()[1], self.token)
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.ranks: dict[int, socket.socket] = {}
        from pyspark import inheritable_thread_target

        # (inheritable: the stage carries the job tags of the thread that starts it)
        threading.Thread(target=inheritable_thread_target(self._collect),
                         args=(address.to_env(),), daemon=True,
                         name="sparkdl-tune-warm-ranks").start()
        try:
            self._accept(start_timeout)
        except BaseException:
            self.end()
            raise

    def _collect(self, address_env: str) -> None:
        from ...executor.warm_ranks import task

        sc = self.spark.sparkContext
        try:
            sc.setJobGroup(self.group, "sparkdl_tune warm ranks", interruptOnCancel=True)
            rdd = sc.parallelize(range(self.num_proc), self.num_proc).barrier()
            rdd.mapPartitions(lambda it: task(address_env, it)).collect()
        except BaseException as exc:  # Py4JJavaError / PythonException with Spark's message
            self.error = exc
        finally:
            self.done.set()

    def _accept(self, start_timeout: int) -> None:
        from ...spec.warm import read_hello

        deadline = time.monotonic() + start_timeout
        while len(self.ranks) < self.num_proc:
            if self.done.is_set():
                self._fail()
            if time.monotonic() > deadline:
                raise FatalError(f"tf.distribute training failed: the warm ranks did not all "
                                 f"connect within execution.start_timeout={start_timeout} s "
                                 f"({len(self.ranks)} of {self.num_proc})")
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            try:
                conn.settimeout(10.0)
                rank = read_hello(conn, self.token)
                conn.settimeout(None)
            except (ValueError, OSError):  # a stranger, or a line that is not ours
                conn.close()
                continue
            if not 0 <= rank < self.num_proc or rank in self.ranks:
                conn.close()
                continue
            self.ranks[rank] = conn

    def run(self, job: TrainJob) -> list[tuple[Any, Any]]:
        """Send ``job`` to every rank; their ``(report, result)`` in rank order."""
        from ...spec.warm import receive, send

        try:
            for rank in sorted(self.ranks):
                send(self.ranks[rank], job)
            return [receive(self.ranks[rank]) for rank in sorted(self.ranks)]
        except (ConnectionError, OSError, EOFError):
            self.done.wait(STAGE_END_SECONDS)
            self._fail()

    def _fail(self):
        """Raise the stage's failure, worded as the ``barrier`` launcher words it."""
        if self.error is not None:
            raise FatalError(describe_failure(str(self.error), self.num_proc)) from self.error
        raise FatalError("tf.distribute training failed: a warm rank's connection closed "
                         "before the rank sent its result")

    def end(self) -> None:
        """Tell each rank to stop, wait for the stage; cancel it when it does not end."""
        from ...spec.warm import send

        for conn in self.ranks.values():
            try:
                send(conn, None)
            except OSError:
                pass
        if not self.done.wait(STAGE_END_SECONDS):
            self.spark.sparkContext.cancelJobGroup(self.group)
            self.done.wait(STAGE_END_SECONDS)
        for conn in [*self.ranks.values(), self._listener]:
            try:
                conn.close()
            except OSError:
                pass
        self.ranks.clear()
