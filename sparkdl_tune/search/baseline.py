"""The baseline a search measures its gain against (``search.baseline``).

``search.baseline: true`` trains the default configuration — the job's config with batch 32
and learning rate 1e-3 (:data:`DEFAULTS`) — before the first trial; a mapping of config keys
names another one (it replaces the defaults). It trains like a trial: the trial epoch budget,
on the train split, judged on validation, and evaluated on test. It is recorded as a child run
of the search (``sparkdl_tune.kind=baseline``); a resumed search reuses a finished one.

The gain is the **relative error drop**: for a metric that is better high (an accuracy,
bounded by 1) ``(new - base) / (1 - base)``, the share of the baseline's error that is gone;
for one that is better low (a loss, an error) ``(base - new) / base``. It is given twice:

- ``validation``: the best trial against the baseline, both at the trial budget on the same
  splits (like for like: what the search itself found);
- ``test``: the final model against the baseline on the test split (the final model also had
  the retrain's epochs and the validation rows: what a user gets in the end).

Driver side.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .. import logs
from ..errors import ConfigError

log = logs.get("tune")

KIND_BASELINE = "baseline"
DEFAULTS = {"training.batch_size": 32, "training.learning_rate": 1e-3}
SCORE = "objective"  # the run's metric holding the baseline's score (as a trial's)


def overrides(setting: Any) -> Optional[dict[str, Any]]:
    """The config values of the baseline, or ``None`` when there is none."""
    if setting is False or setting is None:
        return None
    if setting is True:
        return dict(DEFAULTS)
    if isinstance(setting, dict) and setting:
        return dict(setting)
    raise ConfigError(f"search.baseline is {setting!r}; use true (batch 32, learning rate "
                      "1e-3) or a mapping of config keys, e.g. {training.batch_size: 64}")


def check(cfg) -> Optional[Any]:
    """The baseline's config (``None`` without one); bad keys or values fail now, before
    training."""
    from ..config.loader import with_values

    values = overrides(cfg.search.baseline)
    if values is None:
        return None
    return with_values(cfg, values, where="search.baseline")


def run(base_cfg, prepared, parent_id: str, metric: str, mode: str, epochs: int) -> dict:
    """The baseline's record: a finished baseline run of this search, or a new training."""
    from ..config.loader import as_flat_dict, with_values
    from ..driver.train import fit
    from ..tracking import store as tracking
    from ..tracking.layout import TAG_KIND, TAG_SEARCH

    name = base_cfg.search.name
    for old in tracking.find_runs(base_cfg.mlflow, {TAG_KIND: KIND_BASELINE},
                                  parent_run_id=parent_id):
        if old.info.status == "FINISHED" and SCORE in old.data.metrics:
            log.info("tune: baseline already trained (run %s)", old.info.run_id)
            return _record(old.info.run_id, old.data.metrics, metric)
        tracking.delete_run(old.info.run_id)  # left running by a search that died
    cfg = with_values(base_cfg, {"training.epochs": epochs})
    values = overrides(base_cfg.search.baseline)
    log.info("tune: training the baseline (%s, %d epochs) to measure the search's gain",
             ", ".join(f"{k}={v}" for k, v in values.items()), epochs)
    with tracking.start_run(cfg.mlflow, f"{name}-baseline", parent_run_id=parent_id,
                            tags={TAG_KIND: KIND_BASELINE, TAG_SEARCH: name}) as active:
        result = fit(cfg, prepared, verbose=0)
        series = [v for v in result.history.get(metric, []) if not math.isnan(v)]
        if not series:
            raise ConfigError(f"the baseline logged no {metric}; check search.metric")
        score = max(series) if mode == "max" else min(series)
        tracking.log_params({**as_flat_dict(cfg), "baseline": True})
        tracking.log_metrics(result.history, {**result.test_metrics, SCORE: score,
                                              "epochs_run": result.epochs_run,
                                              "wall_seconds": result.wall_seconds})
        return _record(active.info.run_id, {**result.test_metrics, SCORE: score}, metric)


def _record(run_id: str, metrics: dict[str, float], metric: str) -> dict[str, Any]:
    return {"run_id": run_id, "score": metrics[SCORE],
            "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")}}


def relative_error_drop(base: float, new: float, mode: str) -> Optional[float]:
    """See the module docstring; ``None`` when the baseline leaves no error to drop."""
    if mode == "max":
        return None if base >= 1 else (new - base) / (1 - base)
    return None if base == 0 else (base - new) / base


def study_of(record: dict[str, Any], values: dict[str, Any], best_score: float,
             final: Optional[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """The ``baseline`` entry of ``study.json`` and the summary."""
    test_key = "test_" + metric.removeprefix("val_")
    drops: dict[str, Any] = {"validation": _rounded(relative_error_drop(
        record["score"], best_score, mode))}
    base_test = record["test_metrics"].get(test_key)
    final_test = ((final or {}).get("test_metrics") or {}).get(test_key)
    if base_test is not None and final_test is not None:
        drops["test"] = _rounded(relative_error_drop(base_test, final_test, mode))
    return {"run_id": record["run_id"], "config": values, "metric": metric,
            "score": record["score"], "best_score": best_score,
            "test_metric": test_key, "test": base_test, "final_test": final_test,
            "relative_error_drop": drops,
            "formula": "(new - base) / (1 - base)" if mode == "max" else "(base - new) / base"}


def _rounded(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 4)
