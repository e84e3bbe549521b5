"""Resuming a search: its finished trials, read back from MLflow, become hyperopt trials again.

Driver side. Trials are renumbered 0..k-1 in their original order (a trial that was running
when the search died never reached MLflow and simply runs again), so hyperopt's id counter,
TPE's history, the genetic population and the grid's visited set all continue from them.
"""

from __future__ import annotations

import json

from .monitor import THROUGHPUT_KEYS, TrialRecord
from .run_layout import (KIND_SEARCH, KIND_TRIAL, TAG_CURVE, TAG_FAILURE, TAG_KIND, TAG_LOSS,
                         TAG_PRUNED, TAG_RUNG, TAG_SEARCH, TAG_START, TAG_TRIAL, TAG_VALS)


# KILLED: cancelled by the search's stop; RUNNING: the search died while recording it (a run
# is created, then filled in, then ended). Either way the trial runs again.
_RUN_AGAIN = ("KILLED", "RUNNING")


def find_search(settings, name: str):
    """The newest parent run of the search called ``name``, or None."""
    from . import tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_SEARCH, TAG_SEARCH: name})
    return runs[0] if runs else None


def count_trials(settings, parent_run_id: str) -> int:
    """How many trials the search recorded (finished or failed; cancelled ones run again)."""
    from . import tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_TRIAL}, parent_run_id=parent_run_id)
    return sum(1 for run in runs if run.info.status not in _RUN_AGAIN)


def finished_trials(settings, parent_run_id: str, space) -> list[TrialRecord]:
    """Every trial recorded under the search's parent run, in trial order; parameters are
    decoded from the stored hyperopt vals (MLflow params are only strings)."""
    from . import tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_TRIAL}, parent_run_id=parent_run_id)
    records = []
    for run in runs:
        if run.info.status in _RUN_AGAIN:
            if run.info.status == "RUNNING":  # the search died while it ran: it runs again
                tracking.end_run(run.info.run_id, "KILLED")
            continue
        tags, metrics = run.data.tags, run.data.metrics
        ok = run.info.status == "FINISHED"
        loss = tags.get(TAG_LOSS)
        vals = json.loads(tags[TAG_VALS])
        pruned = tags.get(TAG_PRUNED, "")
        rung = tags.get(TAG_RUNG)
        records.append(TrialRecord(
            number=int(tags[TAG_TRIAL]), ok=ok, vals=vals, params=space.decode(vals),
            loss=float(loss) if ok and loss else None,
            score=metrics.get("objective") if ok else None,
            failure=tags.get(TAG_FAILURE), duration=metrics.get("trial_seconds", 0.0),
            start=float(tags.get(TAG_START) or 0.0),
            epochs_run=int(metrics.get("epochs_run", 0)),
            extra={k: v for k, v in metrics.items()
                   if k.startswith("test_") or k in THROUGHPUT_KEYS},
            run_id=run.info.run_id,
            pruned_epoch=int(pruned.split(":")[0].split()[-1]) if ok and pruned else None,
            pruned_reason=pruned.partition(": ")[2],
            curve=json.loads(tags.get(TAG_CURVE) or "[]"),
            rung=int(float(rung)) if rung else None))
    records.sort(key=lambda r: r.number)
    for i, record in enumerate(records):
        if record.number != i:  # a gap left by a trial that never finished: close it
            tracking.set_tags({TAG_TRIAL: i}, run_id=record.run_id)
            record.number = i
    return records
