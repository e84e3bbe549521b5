"""The final retrain, exactly once: what an earlier run of the same search left behind.

Driver side. A driver that dies after the trials but before the search's parent run is marked
finished (``TAG_FINAL``) leaves its final child run behind; the next run of the search retrains
again. Before it does, :func:`earlier_final` looks at the search's final runs:

- one FINISHED, retrained from the same best trial, with its model logged (and registered when
  ``mlflow.registered_model_name`` is set): its record is reused, nothing is trained;
- one RUNNING, FAILED or KILLED (the dead driver's): it is marked FAILED with the reason, and
  deleted, with every model version registered from it, so the retrain that follows leaves
  exactly one version.

A FINISHED final run of another best trial (a search extended with more trials) is an earlier
result of the search and stays, with its model version.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import logs
from ..tracking.layout import KIND_FINAL, TAG_FAILURE, TAG_KIND, TAG_SEARCH

log = logs.get("tune")

BEST_TRIAL_PARAM = "best_trial"  # logged on the final run: the 1-based trial it retrains
UNFINISHED = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")
ABANDONED = ("the driver stopped during the final retrain; the next run of the search "
             "retrained again")


def earlier_final(settings, search_name: str, parent_run_id: str,
                  best_number: int) -> Optional[dict[str, Any]]:
    """The record of a finished final run of trial ``best_number`` (0-based) to reuse (as
    :func:`~sparkdl_tune.search.tuner._retrain` returns it), or None: retrain. Unfinished final
    runs are removed first (see the module docstring)."""
    from ..tracking import store as tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_FINAL, TAG_SEARCH: search_name},
                              parent_run_id=parent_run_id)
    reusable = None
    for run in runs:  # newest first
        if run.info.status in UNFINISHED:
            _remove(settings, run)
        elif reusable is None and run.info.status == "FINISHED":
            reusable = _record(settings, run, best_number)
    if reusable is not None:
        log.info("tune: the final model of trial %d is already trained (run %s%s); reusing "
                 "it", best_number + 1, reusable["run_id"],
                 f", version {reusable['registered_version']}"
                 if reusable["registered_version"] else "")
    return reusable


def _record(settings, run, best_number: int) -> Optional[dict[str, Any]]:
    """The reusable record of a FINISHED final run, or None when it is of another trial, has no
    model, or lacks the registered version asked for."""
    if run.data.params.get(BEST_TRIAL_PARAM) != str(best_number + 1):
        return None
    model_uri = _model_uri(run)
    if model_uri is None:
        return None
    version = None
    name = settings.registered_model_name
    if name:
        versions = _versions(name, run.info.run_id)
        if not versions:
            return None
        version = max(int(v.version) for v in versions)
    metrics = run.data.metrics
    return {"run_id": run.info.run_id, "model_uri": model_uri, "registered_version": version,
            "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
            "epochs": int(metrics.get("epochs_run", 0)), "reused": True}


def _model_uri(run) -> Optional[str]:
    """``models:/<id>`` of the model logged from ``run``, if any."""
    from mlflow import MlflowClient

    from ..tracking.store import MODEL_NAME

    client = MlflowClient()
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{MODEL_NAME}'")
    ready = [m for m in found if str(getattr(m, "status", "READY")).endswith("READY")]
    return f"models:/{ready[0].model_id}" if ready else None


def _versions(name: str, run_id: str) -> list:
    from mlflow import MlflowClient

    return list(MlflowClient().search_model_versions(f"name = '{name}' AND run_id = '{run_id}'"))


def _remove(settings, run) -> None:
    """End a dead driver's final run FAILED with the reason, delete its model versions, and
    delete it (MLflow keeps it in its trash)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = run.info.run_id
    name = settings.registered_model_name
    dropped = []
    if name:
        for v in _versions(name, run_id):
            client.delete_model_version(name, v.version)
            dropped.append(str(v.version))
    if run.info.status in ("RUNNING", "SCHEDULED"):
        client.set_tag(run_id, TAG_FAILURE, ABANDONED)
        client.set_terminated(run_id, "FAILED")
    client.delete_run(run_id)
    log.info("tune: removed the unfinished final run %s%s left by an earlier run of the "
             "search; retraining", run_id,
             f" and its model version {', '.join(dropped)} of {name!r}" if dropped else "")
