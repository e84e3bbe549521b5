"""Execution modes end to end (slow: make test-slow)."""

from __future__ import annotations

import pytest
from conftest import tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.search.tuner import tune

pytestmark = pytest.mark.slow
SPACE = {"model.units": {"choice": [[16], [32], [64]]},
         "training.learning_rate": {"loguniform": [1e-3, 1e-2]}}


def trials_of(tmp_path, parent):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    return client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent}' and "
                              "tags.`sparkdl_tune.kind` = 'trial'")


def test_parallel_mode_runs_two_trials_at_a_time(spark, tiny_tabular, tmp_path):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="parallel", search__max_trials=4,
        search__execution_mode="parallel", search__retrain="false", training__epochs=40))
    summary = tune(cfg, spark)
    assert summary["execution_mode"] == "parallel" and summary["trials"] == 4
    spans = sorted((float(r.data.tags["sparkdl_tune.start"]),
                    float(r.data.tags["sparkdl_tune.start"]) + r.data.metrics["trial_seconds"])
                   for r in trials_of(tmp_path, summary["parent_run_id"]))
    t0 = spans[0][0]
    print("\ntrial spans (s from first start):",
          [(round(a - t0, 1), round(b - t0, 1)) for a, b in spans])
    overlaps = sum(1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]) if a2 < b1)
    assert overlaps >= 1


def test_distributed_mode_runs_each_trial_as_a_two_rank_horovod_job(spark, tiny_tabular,
                                                                     tmp_path):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="distributed", search__max_trials=2,
        search__execution_mode="auto", execution__num_proc=2, search__retrain="false"))
    summary = tune(cfg, spark)
    assert summary["execution_mode"] == "distributed" and summary["trials"] == 2
    runs = trials_of(tmp_path, summary["parent_run_id"])
    assert [r.data.metrics["num_proc"] for r in runs] == [2.0, 2.0]
