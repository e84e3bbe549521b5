"""The final retrain (:func:`retrain`: the best parameters on train+validation), exactly once.

Driver side. A driver that dies after the trials but before the search's parent run is marked
finished (``TAG_FINAL``) leaves its final child run behind; the next run of the search retrains
again. Before it does, :func:`earlier_final` looks at the search's final runs:

- one FINISHED, retrained from the same best trial with the same ``search.final_epochs`` and
  ``search.final_minutes`` (its params), with its model logged (and registered when
  ``mlflow.registered_model_name`` is set): its record is reused, its ``evaluation`` read back
  from the run, nothing is trained;
- one RUNNING, FAILED or KILLED (the dead driver's): it is marked FAILED with the reason, and
  deleted, with every model version registered from it, so the retrain that follows leaves
  exactly one version.

A FINISHED final run of another best trial (a search extended with more trials), or of other
final settings, is an earlier result of the search and stays, with its model version. A finished
search rerun with other final settings retrains too (:func:`changed_settings`): they are not
part of the search's definition, as no trial depends on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from .. import logs
from ..tracking.layout import KIND_FINAL, TAG_FAILURE, TAG_KIND, TAG_SEARCH

if TYPE_CHECKING:
    from ..config.schema import Config
    from ..spec.trial import TrialRecord
    from .space import SearchSpace

log = logs.get("tune")

BEST_TRIAL_PARAM = "best_trial"  # logged on the final run: the 1-based trial it retrains
SETTINGS = ("final_epochs", "final_minutes")  # of cfg.search; logged as search.<name> params
UNFINISHED = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")
ABANDONED = ("the driver stopped during the final retrain; the next run of the search "
             "retrained again")


def final_settings(cfg: Config) -> dict[str, str]:
    """``search.final_epochs`` and ``search.final_minutes`` as the final run's params hold
    them (MLflow's strings)."""
    return {f"search.{k}": str(getattr(cfg.search, k)) for k in SETTINGS}


def changed_settings(cfg: Config, final_run_id: str) -> list[str]:
    """``key: old -> new`` for each final setting that differs from final run
    ``final_run_id``'s; ``[]`` when that run cannot be read (nothing to compare with)."""
    from mlflow import MlflowClient

    try:
        params = MlflowClient().get_run(final_run_id).data.params
    except Exception:
        return []
    return _differences(params, final_settings(cfg))


def _differences(params: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    return [f"{k}: {params.get(k, '(unset)')} -> {v}" for k, v in now.items()
            if params.get(k) != v]


def earlier_final(settings, search_name: str, parent_run_id: str, best_number: int,
                  now: Optional[Mapping[str, str]] = None) -> Optional[dict[str, Any]]:
    """The record of a finished final run of trial ``best_number`` (0-based) with the final
    settings ``now`` (:func:`final_settings`; None: any) to reuse (as :func:`retrain` returns
    it), or None: retrain. Unfinished final runs are removed first (see the module
    docstring)."""
    from ..tracking import store as tracking

    runs = tracking.find_runs(settings, {TAG_KIND: KIND_FINAL, TAG_SEARCH: search_name},
                              parent_run_id=parent_run_id)
    reusable = None
    for run in runs:  # newest first
        if run.info.status in UNFINISHED:
            _remove(settings, run)
        elif reusable is None and run.info.status == "FINISHED":
            reusable = _record(settings, run, best_number, now)
    if reusable is not None:
        log.info("tune: the final model of trial %d is already trained (run %s%s); reusing "
                 "it", best_number + 1, reusable["run_id"],
                 f", version {reusable['registered_version']}"
                 if reusable["registered_version"] else "")
    return reusable


def _record(settings, run, best_number: int,
            now: Optional[Mapping[str, str]]) -> Optional[dict[str, Any]]:
    """The reusable record of a FINISHED final run, or None when it is of another trial or
    other final settings, has no model, or lacks the registered version asked for."""
    from ..tracking.results import read_evaluation

    if run.data.params.get(BEST_TRIAL_PARAM) != str(best_number + 1):
        return None
    changed = _differences(run.data.params, now or {})
    if changed:
        log.info("tune: the final run %s of trial %d had other final settings (%s); "
                 "retraining", run.info.run_id, best_number + 1, "; ".join(changed))
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
            "epochs": int(metrics.get("epochs_run", 0)), "reused": True,
            "evaluation": read_evaluation(run.info.run_id)}  # as the retrain returned it


def _model_uri(run) -> Optional[str]:
    """``models:/<id>`` of the model logged from ``run``, if any."""
    from mlflow import MlflowClient

    from ..tracking.layout import MODEL_NAME

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


def retrain(cfg: Config, prepared, space: SearchSpace, best: TrialRecord,
            parent_id: str) -> dict[str, Any]:
    """The best parameters, trained on train+validation with the final epoch budget."""
    from dataclasses import replace

    from ..config.loader import as_flat_dict, with_values
    from ..driver.train import fit
    from ..executor.models import rebuild
    from ..tracking import store as tracking
    from ..tracking.model import log_training

    # a driver killed during an earlier retrain: its final run is reused, or removed first
    reused = earlier_final(cfg.mlflow, cfg.search.name, parent_id, best.number,
                           final_settings(cfg))
    if reused is not None:
        return reused
    data = prepared.data
    both = data.splits["train"] + data.splits["validation"]
    # the validation rows are training rows now: measuring on them would only flatter the model
    # (no val_* metrics in the final run); test metrics alone describe it
    splits = {k: v for k, v in data.splits.items() if k != "validation"}
    combined = replace(data, splits={**splits, "train": both})
    epochs = cfg.search.final_epochs or cfg.training.epochs
    budget = cfg.search.final_minutes
    if budget:
        epochs = epochs_within(budget, epochs, best, both.rows, prepared.spark, cfg)
    final_cfg = with_values(cfg, {**best.params,
                                  "training.epochs": epochs,
                                  "training.time_limit_minutes": budget,
                                  # no validation split: nothing to monitor
                                  "training.early_stopping.enabled": False,
                                  "training.reduce_lr.enabled": False})
    final_cfg = _replayed_unfreezing(final_cfg, best)
    log.info("tune: retraining trial %d's parameters on train+validation (%d rows, %d epochs)",
             best.number + 1, both.rows, final_cfg.training.epochs)
    with tracking.start_run(cfg.mlflow, f"{cfg.search.name}-final", parent_run_id=parent_id,
                            tags={TAG_KIND: KIND_FINAL, TAG_SEARCH: cfg.search.name}) as run:
        result = fit(final_cfg, prepared, verbose=2, data=combined)
        info = log_training(result, rebuild(result),
                            {**as_flat_dict(final_cfg), **final_settings(cfg),
                             BEST_TRIAL_PARAM: best.number + 1},
                            register_name=cfg.mlflow.registered_model_name)
    log.info("tune: final model %s", ", ".join(f"{k} {v:.4f}"
                                               for k, v in result.test_metrics.items()))
    return {"run_id": run.info.run_id, "model_uri": info["model_uri"],
            "registered_version": info.get("registered_version"),
            "test_metrics": result.test_metrics, "epochs": result.epochs_run,
            "evaluation": result.extra.get("evaluation")}  # per-class scores, baseline...


def _replayed_unfreezing(cfg: Config, best: TrialRecord) -> Config:
    """A progressive backbone retrained without a validation split unfreezes after the epochs
    its best trial did (``model.backbone.unfreeze_at``)."""
    from ..config.loader import with_values
    from ..executor.unfreezing import steps_of

    spec = cfg.model.backbone
    if spec is None or spec.mode != "progressive" or spec.unfreeze_at is not None:
        return cfg
    steps = steps_of(best.history)
    if steps is None:
        return cfg
    log.info("tune: the final model unfreezes its backbone after epochs %s, as trial %d did",
             list(steps) or "(none)", best.number + 1)
    return with_values(cfg, {"model.backbone.unfreeze_at": list(steps)})


BUDGET_SHARE = 0.9  # of search.final_minutes planned for epochs; the rest: test, logging


def epochs_within(minutes: float, epochs: int, best: TrialRecord, rows: int, spark,
                   cfg: Config) -> int:
    """How many of ``epochs`` fit in ``minutes``, judged from the best trial's samples/s.

    The trial ran with fewer TensorFlow threads beside other trials; the retrain gets the
    square root of the thread ratio as its speed-up (conservative: matrix products scale
    better than that on idle cores, and the time limit stops an overrun anyway).
    """
    from ..driver.launch import threads_per_proc

    measured = best.extra.get("samples_per_second", 0.0)
    if measured <= 0:
        log.info("tune: no throughput measured for trial %d; the retrain keeps %d epochs "
                 "and stops at the %.1f-minute limit", best.number + 1, epochs, minutes)
        return epochs
    n = cfg.execution.num_proc
    trial_threads = max(1, int(best.extra.get("threads_per_proc", 1)))
    speedup = (threads_per_proc(spark, n, cfg.execution.threads_per_proc) / trial_threads) ** 0.5
    if n > 1 and best.extra.get("num_proc", 1) < n:
        speedup *= 0.8 * n / best.extra.get("num_proc", 1)  # Horovod scales less than linearly
    epoch_seconds = rows / (measured * max(speedup, 1.0))
    fit = max(1, int(minutes * 60 * BUDGET_SHARE // epoch_seconds))
    if fit < epochs:
        log.info("tune: %d final epochs would take ~%.1f min at trial %d's %.0f samples/s; "
                 "%d fit in search.final_minutes=%.1f", epochs, epochs * epoch_seconds / 60,
                 best.number + 1, measured, fit, minutes)
    return min(epochs, fit)
