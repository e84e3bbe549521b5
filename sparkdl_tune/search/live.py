"""Driver side: the trials that are running now, as their per-epoch reports arrive.

For each report (from :class:`~sparkdl_tune.search.report_server.ReportServer`) :class:`LiveTrials`

- finds which attempt of the engine's store sent it (the running attempt with the same point —
  SparkTrials does not tell a task its trial number), and opens its MLflow child run at once, so a
  user watching the MLflow UI sees the trial, then each epoch's metrics as it runs;
- asks the scheduler whether the trial goes on, and answers the trial.

MLflow writes go through one background thread in arrival order: a slow tracking server delays
the UI, never a trial. When a trial ends, the monitor calls :meth:`LiveTrials.finish` to take
over its run (and to know which epochs are already logged).
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .. import logs
from ..tracking.layout import KIND_TRIAL, TAG_KIND, TAG_SEARCH, TAG_START, TAG_STATUS, TAG_TRIAL

log = logs.get("tune")

RETRY_SECONDS = 10.0  # while MLflow writes fail, progress writes are tried this often


@dataclass
class LiveTrial:
    key: str
    params: dict[str, Any]
    tid: Optional[int] = None
    run_id: Optional[str] = None
    history: dict[str, list[float]] = field(default_factory=dict)  # as reported
    steps: dict[str, int] = field(default_factory=dict)  # metric -> epochs logged to MLflow
    curve: list[Optional[float]] = field(default_factory=list)  # the search metric per epoch
    pruned: Optional[tuple[int, str]] = None  # (epoch, why)
    started: float = field(default_factory=time.time)


class LiveTrials:
    """See the module docstring. ``scheduler`` is a
    :class:`~sparkdl_tune.search.schedulers.Scheduler`; ``name_of(tid)`` names a trial's run."""

    def __init__(self, settings, parent_run_id: str, search_name: str, space, scheduler,
                 metric: str):
        self.settings, self.parent_run_id = settings, parent_run_id
        self.search_name, self.space = search_name, space
        self.scheduler, self.metric = scheduler, metric
        self.trials: dict[str, LiveTrial] = {}
        self._store = None
        self._lock = threading.Lock()
        self._writes: queue.Queue = queue.Queue()
        self._failing, self._retry_at = False, 0.0
        self._writer = threading.Thread(target=self._write_loop, name="sparkdl-tune-live",
                                        daemon=True)
        self._writer.start()

    def watch(self, store) -> None:
        """The engine's :class:`~sparkdl_tune.search.engines.protocol.Store`, to match reports
        to attempts."""
        self._store = store

    # -- reports -------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        key = str(message.get("key") or "")
        if not key:
            return {}
        with self._lock:
            trial = self.trials.get(key)
            if trial is None:
                trial = self.trials[key] = LiveTrial(key, dict(message.get("params") or {}))
                # hyperband: a trial joins its bracket as it starts, in start order (as a
                # resumed search replays the recorded trials)
                self.scheduler.milestones(key)
            if trial.tid is None:
                trial.tid = self._match(trial)
                if trial.tid is None:  # Spark retried a lost task: the same trial again
                    trial.tid = self._retry_of(trial)
                if trial.tid is not None:
                    self._writes.put((True, lambda t=trial: self._open_run(t)))
        if message.get("event") != "epoch":
            return {}
        epoch = int(message.get("epoch") or 0)
        # (a NaN travels as null: it stays NaN here, so the epochs keep their steps and the
        # scheduler stops a diverged trial)
        metrics = {k: math.nan if v is None else float(v)
                   for k, v in (message.get("metrics") or {}).items()
                   if v is None or isinstance(v, (int, float))}
        value = metrics.get(self.metric, math.nan)
        with self._lock:
            if epoch <= len(trial.curve):  # a repeated message (the trial reconnected)
                return {}
            trial.curve.append(value if math.isfinite(value) else None)
            for k, v in metrics.items():
                trial.history.setdefault(k, []).append(v)
        self._writes.put((True, lambda: self._log_epochs(trial)))
        if self.metric not in metrics:
            return {}
        decision = self.scheduler.report(key, epoch, value)
        if not decision.stop:
            return {}
        with self._lock:
            trial.pruned = (epoch, decision.reason)
        return {"stop": True, "reason": decision.reason}

    def _match(self, trial: LiveTrial) -> Optional[int]:
        """The lowest running attempt with this point that no live trial holds yet."""
        from .engines.protocol import RUNNING
        from .space import to_python

        if self._store is None:
            return None
        want = _canonical(trial.params)
        taken = {t.tid for t in self.trials.values() if t.tid is not None}
        for attempt in sorted(self._store.attempts(), key=lambda a: a.number):
            if attempt.number in taken or attempt.state != RUNNING:
                continue
            try:
                if _canonical(to_python(self.space.decode(attempt.vals))) == want:
                    return int(attempt.number)
            except Exception:
                continue
        return None

    def _retry_of(self, trial: LiveTrial) -> Optional[int]:
        """The number of an earlier attempt with this point that is still running: Spark
        retries a task whose worker or executor was lost (``spark.task.maxFailures``) with the
        same point. The retry takes the trial over; the attempt's run is deleted (the retry
        opens one and logs its epochs from the first)."""
        from .engines.protocol import RUNNING

        if self._store is None:
            return None
        running = {a.number for a in self._store.attempts() if a.state == RUNNING}
        want = _canonical(trial.params)
        for old in list(self.trials.values()):
            if old is trial or old.tid not in running or _canonical(old.params) != want:
                continue
            self.trials.pop(old.key, None)
            self._writes.put((True, lambda o=old: self._drop_run(o)))
            log.info("tune: trial %d runs again: Spark retried its task (the worker or "
                     "executor running it was lost)", old.tid + 1)
            return old.tid
        return None

    def _drop_run(self, trial: LiveTrial) -> None:
        from ..tracking import store as tracking

        if trial.run_id is not None:
            tracking.delete_run(trial.run_id)

    # -- handing over to the monitor ------------------------------------------------------
    def finish(self, key: str, tid: int) -> Optional[LiveTrial]:
        """The live trial with ``key`` (or, when a cancelled trial left no key, trial id
        ``tid``) once its queued MLflow writes are done; None when it never reported."""
        with self._lock:
            trial = self.trials.pop(key, None) if key else None
            if trial is None:
                trial = next((t for t in self.trials.values() if t.tid == tid), None)
                if trial is not None:
                    self.trials.pop(trial.key, None)
        if trial is None:
            return None
        self.flush()
        if trial.run_id is None and trial.tid is None:
            trial.tid = tid
        self.scheduler.complete(trial.key)
        return trial

    def flush(self, timeout: float = 60.0) -> None:
        done = threading.Event()
        self._writes.put((False, done.set))
        done.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._writes.put(None)

    # -- MLflow writes (one thread) ----------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            if item is None:
                return
            writes, task = item
            if writes and self._failing and time.monotonic() < self._retry_at:
                continue  # MLflow is failing: skip progress (the final record has it all)
            try:
                task()
                if writes:
                    self._failing = False
            except Exception as exc:  # the trial's final record writes it all again
                if not self._failing:  # once per spell of failures, not once per epoch
                    from ..tracking.outage import is_outage

                    why = ("the tracking server is unreachable" if is_outage(exc) else
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                           if str(exc) else type(exc).__name__)
                    log.warning("tune: could not write running trials' progress to MLflow (%s); "
                                "trying again every %.0f s, the trials go on", why,
                                RETRY_SECONDS)
                self._failing = True
                self._retry_at = time.monotonic() + RETRY_SECONDS

    def _open_run(self, trial: LiveTrial) -> None:
        from ..tracking import store as tracking

        tags = {TAG_KIND: KIND_TRIAL, TAG_SEARCH: self.search_name, TAG_TRIAL: trial.tid,
                TAG_START: trial.started, TAG_STATUS: "running"}
        trial.run_id = tracking.open_child_run(self.settings, trial_run_name(trial.tid),
                                               self.parent_run_id, tags)
        tracking.log_params(trial.params, trial.run_id)
        self._log_epochs(trial)

    def _log_epochs(self, trial: LiveTrial) -> None:
        """Every reported epoch not in MLflow yet (step = epoch index, as in the final
        record)."""
        from ..tracking import store as tracking

        if trial.run_id is None:  # not matched yet: logged once it is, or by the final record
            return
        with self._lock:
            fresh = {k: (trial.steps.get(k, 0), list(v[trial.steps.get(k, 0):]))
                     for k, v in trial.history.items()}
        tracking.log_steps(trial.run_id, fresh)
        for k, (first, values) in fresh.items():
            trial.steps[k] = first + len(values)


def trial_run_name(tid: int) -> str:
    return f"trial-{tid + 1:03d}"


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)
