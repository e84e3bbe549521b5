"""Watches a running search: records each finished trial in MLflow as it lands, prints
progress, and decides when the budget's stop rules are met.

Driver side. A background thread polls the engine's store (its attempts: plain
:class:`~sparkdl_tune.search.engines.protocol.Attempt` records, whichever engine runs) every half
second, so a trial is written to MLflow within about a second of finishing — a crash later
loses nothing that finished. The engine calls :meth:`Monitor.early_stop_fn` between trials; it
polls too.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Optional

from .. import logs
from ..spec.trial import COMPLEXITY_KEYS, THROUGHPUT_KEYS, TrialRecord
from ..tracking.layout import (
    KIND_TRIAL,
    TAG_CURVE,
    TAG_DATA_SOURCE,
    TAG_FOLDS,
    TAG_KIND,
    TAG_LOSS,
    TAG_PRUNED,
    TAG_RUNG,
    TAG_SEARCH,
    TAG_START,
    TAG_STATUS,
    TAG_TRIAL,
    TAG_VALS,
    TAG_WHERE,
)
from . import pareto
from .engines.protocol import OK, STATUS_OK, Attempt, Store
from .live import trial_run_name
from .space import to_python

log = logs.get("tune")

class Monitor:
    """See the module docstring. ``restored`` are trials a resumed search already has."""

    def __init__(self, settings, parent_run_id: str, search, space, metric: str, mode: str,
                 restored: list[TrialRecord] = (), live=None, scheduler=None,
                 total: Optional[int] = None, journal=None):
        self.settings, self.parent_run_id, self.search = settings, parent_run_id, search
        self.space = space
        self.metric, self.mode = metric, mode
        self.records: dict[int, TrialRecord] = {r.number: r for r in restored}
        for r in restored:  # MLflow holds the metric and the second objective, not the pair
            if r.ok and r.score is not None and r.objectives is None:
                r.objectives = pareto.trial_loss(search, r.score, mode, r.extra)[1]
        self.live, self.scheduler = live, scheduler  # sparkdl_tune.search.live / .schedulers
        self.journal = journal  # sparkdl_tune.tracking.journal.Journal
        self.total = total or search.max_trials  # trials the search can run (a grid: fewer)
        self.started = time.monotonic()
        self.finished_here = 0
        self.stop_reason: Optional[str] = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, store: Store) -> None:
        if self.live is not None:
            self.live.watch(store)

        def loop():
            while not self._halt.wait(0.5):
                try:
                    self.poll(store)
                except Exception as exc:  # never kill the search over a logging hiccup
                    log.warning("tune: could not record a trial yet (%s); will retry", exc)

        self._thread = threading.Thread(target=loop, name="sparkdl-tune-monitor", daemon=True)
        self._thread.start()

    def close(self, store: Store) -> None:
        self._halt.set()
        if self._thread:
            self._thread.join()
        self.poll(store)

    def early_stop_fn(self, store: Store) -> bool:
        """The engine's hook between trials: record what finished, then apply the stop
        rules."""
        self.poll(store)
        stop = self._stop_rule()
        if stop and not self.stop_reason:
            self.stop_reason = stop
            log.info("tune: stopping early: %s", stop)
        return bool(stop)

    # -- recording -------------------------------------------------------------------
    def poll(self, store: Store) -> None:
        with self._lock:
            for attempt in store.attempts():
                number = attempt.number
                if number in self.records or not attempt.ended:
                    continue
                record = _record_of(attempt)
                if not record.ok and self._stopping():
                    # killed by the search's own timeout or stop rule: not a failure, and a
                    # resumed search runs it again
                    record.cancelled = True
                    # (the cause the engine holds is Spark's job-cancelled error with its
                    # Java stack: it says nothing more)
                    record.failure = "cancelled when the search stopped"
                if not record.params:  # an errored trial has no result to carry them
                    try:
                        record.params = self.space.decode(record.vals)
                    except Exception:
                        record.params = {}
                self._take_live(record)
                self._log(record)
                self.records[number] = record
                self.finished_here += 1
                self._progress(record)

    def _take_live(self, r: TrialRecord) -> None:
        """Take over the MLflow run the trial opened while it ran, and its curve."""
        trial = self.live.finish(r.key, r.number) if self.live is not None else None
        if trial is not None:
            r.run_id, r.logged = trial.run_id, dict(trial.steps)
            if not r.curve:
                r.curve = list(trial.curve)
            if trial.pruned and r.ok and not r.pruned_epoch:
                r.pruned_epoch, r.pruned_reason = trial.pruned
        if not r.curve and self.metric in r.history:
            r.curve = list(r.history[self.metric])
        if self.scheduler is not None:
            r.rung = self.scheduler.rung_reached(r.key or f"trial-{r.number}", r.epochs_run)

    def _log(self, r: TrialRecord) -> None:
        from ..tracking import store as tracking

        summary = {"trial_seconds": r.duration, "epochs_run": r.epochs_run, **r.extra}
        if r.ok:
            summary["objective"] = r.score
        tags = {TAG_KIND: KIND_TRIAL, TAG_SEARCH: self.search.name, TAG_TRIAL: r.number,
                TAG_VALS: json.dumps(r.vals), TAG_LOSS: "" if r.loss is None else r.loss,
                TAG_START: r.start, TAG_WHERE: r.where, TAG_STATUS: r.status,
                TAG_CURVE: json.dumps([_round(v) for v in r.curve])}
        if r.pruned_epoch:
            tags[TAG_PRUNED] = f"epoch {r.pruned_epoch}: {r.pruned_reason}"
        if r.rung is not None:
            tags[TAG_RUNG] = r.rung
        if r.folds:
            tags[TAG_FOLDS] = folds_tag(r.folds)
        if r.data_source:
            tags[TAG_DATA_SOURCE] = r.data_source
        record = dict(run_name=trial_run_name(r.number), parent_run_id=self.parent_run_id,
                      params=r.params, history=r.history, summary=summary, tags=tags,
                      failure=r.failure, status="KILLED" if r.cancelled else None,
                      run_id=r.run_id, logged=r.logged)
        write = functools.partial(tracking.record_run, self.settings)
        if self.journal is None:
            r.run_id = write(**record)
        else:  # kept on local disk while the tracking server is away
            r.run_id = self.journal.record(r.number, write, **record)

    # -- progress and stop rules ------------------------------------------------------
    @property
    def best(self) -> Optional[TrialRecord]:
        """The best trial that trained its full epochs; a pruned one only when none did (it
        was judged on fewer epochs, and stopped for being behind)."""
        ok = [r for r in self.records.values() if r.ok and not r.pruned_epoch]
        ok = ok or [r for r in self.records.values() if r.ok]
        # by the metric itself: the loss may carry a second objective (search.pareto)
        sign = -1 if self.mode == "max" else 1
        return min(ok, key=lambda r: (sign * r.score, r.number)) if ok else None

    @property
    def pruned(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.status == "pruned"]

    @property
    def epochs_spent(self) -> int:
        return sum(r.epochs_run for r in self.records.values())

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
        done, total = len(self.records), self.total
        elapsed = time.monotonic() - self.started
        left = ""
        if self.finished_here and done < total:
            eta = elapsed / self.finished_here * (total - done)
            if self.search.timeout_minutes:  # the clock ends the search before the budget
                eta = min(eta, max(0.0, self.search.timeout_minutes * 60 - elapsed))
            left = f", ~{_clock(eta)} left"
        best = self.best
        best_text = (f"best {self.metric} {logs.number(best.score)} (trial {best.number + 1})"
                     if best else "no successful trial yet")
        outcome = (f"{self.metric} {logs.number(r.score)}" if r.ok else
                   r.failure if r.cancelled else f"FAILED: {r.failure}")
        if r.pruned_epoch:
            outcome += f" (pruned after epoch {r.pruned_epoch})"
        std = r.extra.get(f"cv_std_{self.metric}")
        if r.ok and std is not None:  # search.cv_folds: the mean of the folds' scores
            outcome += f" ± {logs.number(std)} ({int(r.extra.get('cv_folds', 0))} folds)"
        pruned = f"{len(self.pruned)} pruned, " if self.scheduler is not None else ""
        log.info("tune: trial %d/%d %s | %s | %s%d failed | %d epochs | %s elapsed%s",
                 r.number + 1, total, outcome, best_text, pruned, len(self.failures),
                 self.epochs_spent, _clock(elapsed), left)

    def _stop_rule(self) -> Optional[str]:
        best = self.best
        if best is None:
            return None
        target = self.search.target
        if target is not None and (best.score >= target if self.mode == "max"
                                   else best.score <= target):
            return f"target {self.metric} {target} reached ({logs.number(best.score)})"
        patience = self.search.stop_after_no_improvement
        if patience:
            since = sum(1 for r in self.records.values() if r.number > best.number)
            if since >= patience:
                return f"{since} trials without improvement on trial {best.number + 1}"
        return None


def _record_of(attempt: Attempt) -> TrialRecord:
    result = attempt.result or {}
    vals = {k: [to_python(v) for v in vs] for k, vs in attempt.vals.items()}
    ok = attempt.state == OK and result.get("status") == STATUS_OK
    failure = None
    if not ok:
        failure = (result.get("failure") or attempt.error
                   or "cancelled (search timeout or early stop)")
    extra = {k: float(v) for k, v in (result.get("test_metrics") or {}).items()}
    for key in THROUGHPUT_KEYS:
        if result.get(key):
            extra[key] = float(result[key])
    for key, value in (result.get("measures") or {}).items():  # params, epoch_seconds, ...
        if key in COMPLEXITY_KEYS and value is not None:
            extra[key] = float(value)
    extra.update({k: float(v) for k, v in (result.get("cv") or {}).items()})  # cv_mean_...
    pruned = result.get("pruned") or (None, "")
    return TrialRecord(
        number=attempt.number, ok=ok, vals=vals, params=result.get("params") or {},
        key=str(result.get("key") or ""), pruned_epoch=pruned[0] if ok else None,
        pruned_reason=pruned[1] or "",
        loss=float(result["loss"]) if ok else None,
        score=float(result["score"]) if ok else None, failure=failure,
        duration=float(result.get("duration") or 0.0), start=float(result.get("start") or 0.0),
        epochs_run=int(result.get("epochs_run") or 0), history=result.get("history") or {},
        extra=extra, where=str(result.get("where") or ""),
        objectives=result.get("objectives") if ok else None,
        folds=list(result.get("folds") or []), data_source=str(result.get("data_source") or ""))


FOLDS_TAG_LIMIT = 7500  # MLflow's tag values are short: the fold curves go first


def folds_tag(folds: list[dict]) -> str:
    """The folds of a cross-validated trial as the JSON of one tag (curves dropped when long)."""
    text = json.dumps(folds)
    if len(text) > FOLDS_TAG_LIMIT:
        text = json.dumps([{k: v for k, v in f.items() if k != "curve"} for f in folds])
    return text


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _round(v: Optional[float]) -> Optional[float]:
    return None if v is None else float(f"{v:.6g}")
