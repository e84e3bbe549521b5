"""Warm executors (``search.runner: executors``): one long-lived Spark task per slot takes
trial after trial from the driver, so TensorFlow stays imported and the decoded data stays
cached in its Python worker (:mod:`sparkdl_tune.executor.trial_loop`,
:mod:`sparkdl_tune.executor.data_cache`).

Driver side; engine-neutral: :class:`ExecutorRunner` runs whatever ``objective(point, key)``
it is given on points it gets from ``take() -> (number, point) | None`` and hands each outcome
to ``give(number, outcome)``, where ``outcome`` is ``{"result": dict}``, ``{"error": (type,
message)}`` (the objective raised) or ``{"lost": text}`` (the slot's Spark task failed while it
held the trial: Spark's own error text). Work is asked for and results come back over the
search's report server (``next`` and ``result``, :mod:`sparkdl_tune.spec.report`).

Each slot is its own one-task Spark job, all in one job group (cancelled together): a task
that fails — its Python worker killed, its executor lost — fails the trial it held and nothing
else, and a new job takes the slot. Spark's own retry of the task (``spark.task.maxFailures``)
asks again with a higher attempt number and gets the same trial, as SparkTrials reruns it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from ... import logs
from ...spec.report import pack, unpack
from .slots import SlotThreads

log = logs.get("tune")

WAIT_SECONDS = 0.2  # an idle slot asks again after this long


@dataclass
class _Held:
    number: int
    point: Any
    key: str
    attempt: int


class ExecutorRunner(SlotThreads):
    """See the module docstring. ``server`` is the search's
    :class:`~sparkdl_tune.search.report_server.ReportServer`."""

    def __init__(self, spark, parallelism: int, objective: Callable[..., dict], server,
                 take: Callable[[], Optional[tuple[int, Any]]],
                 give: Callable[[int, dict[str, Any]], None]):
        super().__init__(spark, parallelism)
        self.objective, self.server, self.take, self.give = objective, server, take, give
        self.group = f"sparkdl-tune-executors-{uuid.uuid4().hex[:8]}"
        self._held: dict[int, _Held] = {}
        self._lock = threading.Lock()
        self._lost_in_a_row = 0

    def start(self) -> None:
        self.server.route(("next",), self._next)
        self.server.route(("result",), self._result)
        super().start()

    def close(self) -> None:
        super().close()
        self.server.route(("next", "result"), None)

    def _stop_jobs(self) -> None:
        self.spark.sparkContext.cancelJobGroup(self.group)

    # -- the slots' Spark jobs -----------------------------------------------------------
    def _slot(self, slot: int) -> None:
        from ...executor.trial_loop import serve

        sc = self.spark.sparkContext
        task = functools.partial(serve, self.objective, self.server.address, slot)
        while not self._closing.is_set():
            sc.setJobGroup(self.group, f"sparkdl-tune: trials of slot {slot}", True)
            try:
                sc.parallelize([slot], 1).mapPartitions(task).collect()
                return  # told it was done
            except Exception as exc:  # the task failed: its worker or executor went away
                self._lost(slot, str(exc))

    def _lost(self, slot: int, text: str) -> None:
        with self._lock:
            held = self._held.pop(slot, None)
        if held is not None:
            self.give(held.number, {"lost": text})
        if self._closing.is_set():
            return
        self._lost_in_a_row += 1
        if self._lost_in_a_row > 2 * self.parallelism + 1:  # no task lives: stop trying
            from ..engines.task_failure import reason

            self.broken = text or "the trial slots' Spark tasks keep failing"
            self._closing.set()
            log.error("tune: the trial slots' Spark tasks keep failing; last: %s", reason(text))
            return
        log.info("tune: the Spark task of trial slot %d ended (%s); a new task takes its "
                 "place", slot, text.strip().splitlines()[0][:200] if text.strip() else "?")

    # -- the report server's messages ------------------------------------------------------
    def _next(self, message: dict[str, Any]) -> dict[str, Any]:
        slot, attempt = int(message["slot"]), int(message.get("attempt") or 0)
        with self._lock:
            if self._closing.is_set():
                return {"done": True}
            held = self._held.get(slot)
            if held is not None and attempt > held.attempt:  # Spark retried the slot's task
                held.attempt, held.key = attempt, uuid.uuid4().hex
                return {"trial": self._handed(held)}
            if held is not None:  # asked again without a result: it is lost
                self._held.pop(slot)
                self.give(held.number, {"lost": "the trial's result never reached the driver"})
            got = self.take()
            if got is None:
                return {"wait": WAIT_SECONDS}
            held = self._held[slot] = _Held(got[0], got[1], uuid.uuid4().hex, attempt)
            return {"trial": self._handed(held)}

    @staticmethod
    def _handed(held: _Held) -> dict[str, Any]:
        return {"number": held.number, "key": held.key, "point": pack(held.point)}

    def _result(self, message: dict[str, Any]) -> dict[str, Any]:
        slot, number = int(message["slot"]), int(message["number"])
        with self._lock:
            held = self._held.get(slot)
            if held is None or held.number != number:
                return {}  # a trial the driver no longer waits for (cancelled, retried)
            self._held.pop(slot)
            self._lost_in_a_row = 0
        if "error" in message:
            self.give(number, {"error": tuple(message["error"])})
        else:
            self.give(number, {"result": unpack(message["result"])})
        return {}
