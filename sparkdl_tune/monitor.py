"""Watches a running search: records each finished trial in MLflow as it lands, prints
progress, and decides when the budget's stop rules are met.

Driver side. A background thread polls hyperopt's trial documents every half second, so a
trial is written to MLflow within about a second of finishing — a crash later loses nothing
that finished. hyperopt calls :meth:`Monitor.early_stop_fn` between trials; it polls too.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from . import logs
from .run_layout import (KIND_TRIAL, TAG_KIND, TAG_LOSS, TAG_SEARCH, TAG_START, TAG_TRIAL,
                         TAG_VALS, TAG_WHERE)
from .space import to_python

log = logs.get("tune")

THROUGHPUT_KEYS = ("samples_per_second", "num_proc", "threads_per_proc")  # kept per trial


@dataclass
class TrialRecord:
    """One finished trial, as the monitor and the resume logic see it."""

    number: int
    ok: bool
    vals: dict[str, list]
    params: dict[str, Any]
    loss: Optional[float] = None
    score: Optional[float] = None
    failure: Optional[str] = None
    duration: float = 0.0
    start: float = 0.0
    epochs_run: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    run_id: Optional[str] = None
    where: str = ""
    cancelled: bool = False


class Monitor:
    """See the module docstring. ``restored`` are trials a resumed search already has."""

    def __init__(self, settings, parent_run_id: str, search, space, metric: str, mode: str,
                 restored: list[TrialRecord] = ()):
        self.settings, self.parent_run_id, self.search = settings, parent_run_id, search
        self.space = space
        self.metric, self.mode = metric, mode
        self.records: dict[int, TrialRecord] = {r.number: r for r in restored}
        self.started = time.monotonic()
        self.finished_here = 0
        self.stop_reason: Optional[str] = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, trials) -> None:
        def loop():
            while not self._halt.wait(0.5):
                try:
                    self.poll(trials)
                except Exception as exc:  # never kill the search over a logging hiccup
                    log.warning("tune: could not record a trial yet (%s); will retry", exc)

        self._thread = threading.Thread(target=loop, name="sparkdl-tune-monitor", daemon=True)
        self._thread.start()

    def close(self, trials) -> None:
        self._halt.set()
        if self._thread:
            self._thread.join()
        self.poll(trials)

    def early_stop_fn(self, trials, *args):
        """hyperopt's hook: record what finished, then apply the stop rules."""
        self.poll(trials)
        stop = self._stop_rule()
        if stop and not self.stop_reason:
            self.stop_reason = stop
            log.info("tune: stopping early: %s", stop)
        return bool(stop), args

    # -- recording -------------------------------------------------------------------
    def poll(self, trials) -> None:
        from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR

        with self._lock:
            for doc in list(getattr(trials, "_dynamic_trials", trials.trials)):
                tid = doc["tid"]
                if tid in self.records or doc["state"] not in (
                        JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL):
                    continue
                record = _record_of(doc)
                if not record.ok and self._stopping():
                    # killed by the search's own timeout or stop rule: not a failure, and a
                    # resumed search runs it again
                    record.cancelled = True
                    # (the cause hyperopt stored is Spark's job-cancelled error with its
                    # Java stack: it says nothing more)
                    record.failure = "cancelled when the search stopped"
                if not record.params:  # an errored trial has no result to carry them
                    try:
                        record.params = self.space.decode(record.vals)
                    except Exception:
                        record.params = {}
                self._log(record)
                self.records[tid] = record
                self.finished_here += 1
                self._progress(record)

    def _log(self, r: TrialRecord) -> None:
        from . import tracking

        summary = {"trial_seconds": r.duration, "epochs_run": r.epochs_run, **r.extra}
        if r.ok:
            summary["objective"] = r.score
        tags = {TAG_KIND: KIND_TRIAL, TAG_SEARCH: self.search.name, TAG_TRIAL: r.number,
                TAG_VALS: json.dumps(r.vals), TAG_LOSS: "" if r.loss is None else r.loss,
                TAG_START: r.start, TAG_WHERE: r.where}
        tracking.record_run(self.settings, f"trial-{r.number + 1:03d}", self.parent_run_id,
                            r.params, r.history, summary, tags, failure=r.failure,
                            status="KILLED" if r.cancelled else None)

    # -- progress and stop rules ------------------------------------------------------
    @property
    def best(self) -> Optional[TrialRecord]:
        ok = [r for r in self.records.values() if r.ok]
        return min(ok, key=lambda r: (r.loss, r.number)) if ok else None

    @property
    def failures(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if not r.ok and not r.cancelled]

    @property
    def finished(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if not r.cancelled]

    def _stopping(self) -> bool:
        timeout = self.search.timeout_minutes
        return bool(self.stop_reason) or bool(
            timeout and time.monotonic() - self.started >= timeout * 60 - 1)

    def _progress(self, r: TrialRecord) -> None:
        done, total = len(self.records), self.search.max_trials
        elapsed = time.monotonic() - self.started
        left = ""
        if self.finished_here and done < total:
            eta = elapsed / self.finished_here * (total - done)
            if self.search.timeout_minutes:  # the clock ends the search before the budget
                eta = min(eta, max(0.0, self.search.timeout_minutes * 60 - elapsed))
            left = f", ~{_clock(eta)} left"
        best = self.best
        best_text = (f"best {self.metric} {best.score:.4f} (trial {best.number + 1})"
                     if best else "no successful trial yet")
        outcome = (f"{self.metric} {r.score:.4f}" if r.ok else
                   r.failure if r.cancelled else f"FAILED: {r.failure}")
        log.info("tune: trial %d/%d %s | %s | %d failed | %s elapsed%s",
                 r.number + 1, total, outcome, best_text, len(self.failures), _clock(elapsed),
                 left)

    def _stop_rule(self) -> Optional[str]:
        best = self.best
        if best is None:
            return None
        target = self.search.target
        if target is not None and (best.score >= target if self.mode == "max"
                                   else best.score <= target):
            return f"target {self.metric} {target} reached ({best.score:.4f})"
        patience = self.search.stop_after_no_improvement
        if patience:
            since = sum(1 for r in self.records.values() if r.number > best.number)
            if since >= patience:
                return f"{since} trials without improvement on trial {best.number + 1}"
        return None


def _record_of(doc: dict) -> TrialRecord:
    from hyperopt.base import JOB_STATE_DONE

    result = doc.get("result") or {}
    vals = {k: [to_python(v) for v in vs] for k, vs in doc["misc"]["vals"].items()}
    ok = doc["state"] == JOB_STATE_DONE and result.get("status") == "ok"
    failure = None
    if not ok:
        error = doc["misc"].get("error")
        failure = result.get("failure") or (f"{error[0]}: {error[1]}" if error else
                                            "cancelled (search timeout or early stop)")
    extra = {k: float(v) for k, v in (result.get("test_metrics") or {}).items()}
    for key in THROUGHPUT_KEYS:
        if result.get(key):
            extra[key] = float(result[key])
    return TrialRecord(
        number=doc["tid"], ok=ok, vals=vals, params=result.get("params") or {},
        loss=float(result["loss"]) if ok else None,
        score=float(result["score"]) if ok else None, failure=failure,
        duration=float(result.get("duration") or 0.0), start=float(result.get("start") or 0.0),
        epochs_run=int(result.get("epochs_run") or 0), history=result.get("history") or {},
        extra=extra, where=str(result.get("where") or ""))


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
