"""Distributed trials side by side: ``search.parallelism`` driver threads, each taking trial
after trial and training it as a multi-rank job of its own (a barrier stage; with warm ranks
the thread's own running stage, :class:`~sparkdl_tune.driver.launch.warm.ThreadRanks`).

Driver side; the same take/give contract as
:class:`~sparkdl_tune.search.runners.executors.ExecutorRunner`, so either engine drives it
unchanged: ``take() -> (number, point) | None``, ``objective(point, key)`` on this process
(it launches the trial's ranks), then ``give(number, {"result": dict})`` or ``{"error":
(type, message)}``. The trials' per-epoch reports reach the report server from their ranks as
any distributed trial's do, so the schedulers stop them the same way.

Every Spark job a slot's thread starts (and the warm-rank stage threads it starts) carries the
runner's job tag: :meth:`cancel` (the search's timeout, an early stop) stops the running
trials' stages at once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Optional

from ... import logs

log = logs.get("tune")

WAIT_SECONDS = 0.2  # an idle slot asks again after this long
CLOSE_SECONDS = 60.0  # close(): running trials may end this long before their stages are cancelled


class DriverRunner:
    """See the module docstring (``server`` is unused: the ranks report to it themselves)."""

    def __init__(self, spark, parallelism: int, objective: Callable[..., dict], server,
                 take: Callable[[], Optional[tuple[int, Any]]],
                 give: Callable[[int, dict[str, Any]], None]):
        self.spark, self.parallelism, self.objective = spark, parallelism, objective
        self.take, self.give = take, give
        self.tag = f"sparkdl-tune-trials-{uuid.uuid4().hex[:8]}"
        self.broken: Optional[str] = None  # (never: a failed trial's stage fails that trial)
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        from pyspark import inheritable_thread_target

        for slot in range(self.parallelism):
            thread = threading.Thread(target=inheritable_thread_target(self._slot),
                                      args=(slot,), name=f"sparkdl-tune-trial-slot-{slot}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def cancel(self) -> None:
        """Stop at once: the running trials' stages are cancelled (their outcome no longer
        counts: the engine has ended them)."""
        self._closing.set()
        self.spark.sparkContext.cancelJobsWithTag(self.tag)

    def close(self) -> None:
        """Idle slots end at their next take; stages still running after a while are
        cancelled."""
        self._closing.set()
        for thread in self._threads:
            thread.join(CLOSE_SECONDS / max(1, len(self._threads)))
        if any(t.is_alive() for t in self._threads):
            self.spark.sparkContext.cancelJobsWithTag(self.tag)
            for thread in self._threads:
                thread.join(CLOSE_SECONDS)

    def _slot(self, slot: int) -> None:
        sc = self.spark.sparkContext
        sc.addJobTag(self.tag)  # this thread's jobs, and its children's (inheritable threads)
        sc.setInterruptOnCancel(True)  # a cancelled trial's tasks stop, their workers too
        while not self._closing.is_set():
            got = self.take()
            if got is None:
                self._closing.wait(WAIT_SECONDS)
                continue
            number, point = got
            log.debug("tune: trial slot %d trains trial %d", slot, number + 1)
            try:
                outcome = {"result": dict(self.objective(point, uuid.uuid4().hex))}
            except Exception as exc:  # the objective raised: this trial fails, not the slot
                outcome = {"error": (type(exc).__name__, str(exc).strip()[:300])}
            self.give(number, outcome)
