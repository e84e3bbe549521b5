"""Resuming a search: its finished trials, read back from MLflow, become the engine's again.

Driver side. Trials are renumbered 0..k-1 in their original order (a trial that was running
when the search died runs again; the run it had opened to show its epochs is deleted),
pruned ones keep their status and curve (the scheduler's rung table is rebuilt from the
curves), so the engine's trial numbers, TPE's history, the genetic population and the grid's
visited set all continue from them (the engine's ``run(restored=...)`` puts them back).
"""

from __future__ import annotations

from ..spec.trial import KEPT_KEYS, TrialRecord
from .layout import KIND_SEARCH, KIND_TRIAL, TAG_KIND, TAG_SEARCH, TAG_TRIAL, TrialRun

# KILLED: cancelled by the search's stop; RUNNING: the search died while the trial ran (its
# run is opened when it starts, see sparkdl_tune.search.live). Either way the trial runs again.
_RUN_AGAIN = ("KILLED", "RUNNING")


def find_search(settings, name: str):
    """The newest parent run of the search called ``name``, or None."""
    from . import store as tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_SEARCH, TAG_SEARCH: name})
    return runs[0] if runs else None


def count_trials(settings, parent_run_id: str) -> int:
    """How many trials the search recorded (finished or failed; cancelled ones run again)."""
    from . import store as tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_TRIAL}, parent_run_id=parent_run_id)
    return sum(1 for run in runs if run.info.status not in _RUN_AGAIN)


def finished_trials(settings, parent_run_id: str, space) -> list[TrialRecord]:
    """Every trial recorded under the search's parent run, in trial order; parameters are
    decoded from the stored vals (MLflow params are only strings)."""
    from . import store as tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_TRIAL}, parent_run_id=parent_run_id)
    records = []
    for run in runs:
        t = TrialRun(run)
        if t.status in ("cancelled", "running"):
            if t.status == "running":  # the search died while it ran: it runs again, and
                tracking.delete_run(t.run_id)  # the run it opened to show its epochs goes
            continue
        records.append(TrialRecord(
            number=t.number, ok=t.ok, vals=t.vals, params=space.decode(t.vals), loss=t.loss,
            score=t.objective, failure=t.failure, duration=t.seconds, start=t.start,
            epochs_run=t.epochs, extra={k: v for k, v in t.metrics.items()
                                        if k.startswith(("test_", "cv_")) or k in KEPT_KEYS},
            run_id=t.run_id, pruned_epoch=t.pruned_epoch, pruned_reason=t.pruned_reason,
            curve=t.curve, rung=t.rung, folds=t.folds))
    records.sort(key=lambda r: r.number)
    for i, record in enumerate(records):
        if record.number != i:  # a gap left by a trial that never finished: close it
            tracking.set_tags({TAG_TRIAL: i}, run_id=record.run_id)
            record.number = i
    return records
