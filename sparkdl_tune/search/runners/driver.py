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

import uuid
from collections.abc import Callable
from typing import Any, Optional

from ... import logs
from .slots import SlotThreads

log = logs.get("tune")

WAIT_SECONDS = 0.2  # an idle slot asks again after this long


class DriverRunner(SlotThreads):
    """See the module docstring (``server`` is unused: the ranks report to it themselves)."""

    thread_name = "sparkdl-tune-trial-slot"

    def __init__(self, spark, parallelism: int, objective: Callable[..., dict], server,
                 take: Callable[[], Optional[tuple[int, Any]]],
                 give: Callable[[int, dict[str, Any]], None]):
        super().__init__(spark, parallelism)
        self.objective, self.take, self.give = objective, take, give
        self.tag = f"sparkdl-tune-trials-{uuid.uuid4().hex[:8]}"

    def _stop_jobs(self) -> None:
        self.spark.sparkContext.cancelJobsWithTag(self.tag)

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
