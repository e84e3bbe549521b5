"""The tune workflow on real Spark, hyperopt, Keras and MLflow, on a tiny dataset."""

from __future__ import annotations

import json

import pytest
from conftest import tune_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.errors import ConfigError, FatalError
from sparkdl_tune.search.tuner import tune

LR_SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
            "model.units": {"choice": [[8], [16]]}}


# the faults below with the trials as each test ran them before (driver-side trials) and on
# warm executors (search.runner: executors, parallel trials on local[2])
EXECUTORS = {"search__execution_mode": "parallel", "search__parallelism": 2,
             "search__runner": "executors"}
# (the default suite keeps the executors' case of each fault; the driver-side one, ~15-20 s a
# case, is make test-slow's: driver-side failures and their reasons stay in the default suite
# through test_every_trial_failing_is_a_fatal_error_listing_reasons)
RUNNERS = [pytest.param({}, id="sparktrials", marks=pytest.mark.slow),
           pytest.param(EXECUTORS, id="executors")]
# the same on the second search engine (optuna: the grid is a package Proposer it drives)
ENGINES = [pytest.param({**EXECUTORS, "search__engine": "optuna"}, id="executors-optuna")]


def cfg_for(dataset, tmp_path, space=LR_SPACE, **extra):
    return load_config(None, overrides=tune_overrides(dataset, tmp_path, space, **extra))


def child_runs(tmp_path, parent_run_id, kind="trial"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    return client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
                              f"tags.`sparkdl_tune.kind` = '{kind}'")


def last_json(stdout: str) -> dict:
    """The summary: the whole of the CLI's stdout is one JSON document (Keras prints to stderr)."""
    return json.loads(stdout)


def test_tune_records_trials_retrains_and_writes_outputs(spark, tiny_tabular, tmp_path):
    summary = tune(cfg_for(tiny_tabular, tmp_path, search__name="basic",
                           mlflow__registered_model_name="blobs"), spark)
    assert summary["trials"] == 4 and summary["failed"] == 0
    best = summary["best_params"]
    assert set(best) == {"training.learning_rate", "model.units"}
    assert isinstance(best["training.learning_rate"], float)  # a real value, not an index
    assert best["model.units"] in ([8], [16])
    assert summary["final"]["registered_version"] == 1
    assert summary["final"]["test_metrics"]["test_accuracy"] > 0.5
    out = tmp_path / "out" / "basic"
    assert json.loads((out / "best_params.json").read_text()) == best
    assert json.loads((out / "summary.json").read_text())["trials"] == 4
    trials = child_runs(tmp_path, summary["parent_run_id"])
    assert len(trials) == 4
    one = trials[0]
    assert {"training.learning_rate", "model.units"} <= set(one.data.params)
    assert "objective" in one.data.metrics and "trial_seconds" in one.data.metrics
    assert len(child_runs(tmp_path, summary["parent_run_id"], kind="final")) == 1


def test_final_minutes_cuts_the_retrain_epochs_to_the_measured_throughput(spark, tiny_tabular,
                                                                           tmp_path):
    from sparkdl_tune.search.final import epochs_within
    from sparkdl_tune.spec.trial import TrialRecord

    cfg = cfg_for(tiny_tabular, tmp_path)
    best = TrialRecord(number=0, ok=True, vals={}, params={},
                       extra={"samples_per_second": 1000.0, "threads_per_proc": 1.0})
    # 60,000 rows at 1,000 samples/s x sqrt(2 threads / 1) -> 42.4 s per epoch; 90% of 5 min
    assert epochs_within(5.0, 30, best, 60_000, spark, cfg) == 6
    assert epochs_within(60.0, 30, best, 60_000, spark, cfg) == 30
    assert epochs_within(0.1, 30, best, 60_000, spark, cfg) == 1
    unmeasured = TrialRecord(number=0, ok=True, vals={}, params={})
    assert epochs_within(5.0, 30, unmeasured, 60_000, spark, cfg) == 30

    summary = tune(cfg_for(tiny_tabular, tmp_path, search__name="budget", search__max_trials=2,
                           search__final_minutes=60, training__lr_schedule="cosine"), spark)
    assert summary["final"]["epochs"] == 2  # an hour holds two tiny epochs on any machine
    final = child_runs(tmp_path, summary["parent_run_id"], kind="final")[0]
    assert float(final.data.params["training.time_limit_minutes"]) == 60.0
    assert final.data.params["training.lr_schedule"] == "cosine"
    trial = child_runs(tmp_path, summary["parent_run_id"])[0]
    assert trial.data.metrics["samples_per_second"] > 0
    assert trial.data.metrics["threads_per_proc"] >= 1


def all_runs(tmp_path) -> dict[str, tuple]:
    """Every run of the test experiment: id -> (status, end time, metric keys)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    return {r.info.run_id: (r.info.status, r.info.end_time, sorted(r.data.metrics))
            for r in client.search_runs([exp.experiment_id], "")}


def test_rerun_of_a_finished_search_trains_nothing(spark, tiny_tabular, tmp_path, capsys,
                                                    monkeypatch):
    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, LR_SPACE, search__name="again",
                            search__max_trials=2)]
    assert main(args) == 0
    first = last_json(capsys.readouterr().out)
    runs = all_runs(tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the rerun of a finished search prepared data or trained")

    # the data, the trials and the retrain: the rerun must reach none of them
    monkeypatch.setattr("sparkdl_tune.driver.train.prepare_inputs", must_not_run)
    monkeypatch.setattr("sparkdl_tune.driver.train.fit", must_not_run)
    monkeypatch.setattr("sparkdl_tune.search.objective.evaluate", must_not_run)
    assert main(args) == 0
    second = last_json(capsys.readouterr().out)
    assert second["already_finished"] is True
    assert second["parent_run_id"] == first["parent_run_id"]
    assert all_runs(tmp_path) == runs  # no run added, reopened or logged into
    assert len(child_runs(tmp_path, first["parent_run_id"])) == 2


@pytest.mark.parametrize("runner", RUNNERS + ENGINES)
def test_failed_and_nan_trials_are_recorded_and_the_search_goes_on(spark, tiny_tabular,
                                                                    tmp_path, runner):
    # plain SGD at a learning rate of 1e30 overflows the weights: a NaN loss
    space = {"training.learning_rate": {"choice": [0.05, 1.0e30]},
             "training.loss": {"choice": ["auto", "mse"]}}
    summary = tune(cfg_for(tiny_tabular, tmp_path, space, search__name="faulty",
                           search__algorithm="grid", search__max_trials=10,
                           training__optimizer="sgd", **runner), spark)
    assert summary["trials"] == 4 and summary["failed"] == 3
    assert summary["best_params"] == {"training.learning_rate": 0.05, "training.loss": "auto"}
    failed = [r for r in child_runs(tmp_path, summary["parent_run_id"])
              if r.info.status == "FAILED"]
    reasons = sorted(r.data.tags["failure_reason"] for r in failed)
    assert len(reasons) == 3
    assert any("NaN loss" in why for why in reasons)
    assert any("ConfigError" in why and "mse" in why for why in reasons)


def test_every_trial_failing_is_a_fatal_error_listing_reasons(spark, tiny_tabular, tmp_path):
    space = {"training.loss": {"choice": ["mse", "mae"]}}
    with pytest.raises(FatalError, match=r"all 2 trials failed: .*ConfigError"):
        tune(cfg_for(tiny_tabular, tmp_path, space, search__name="doomed",
                     search__algorithm="grid"), spark)


# a search ended by its budget alone: test_tune_records_trials_retrains_and_writes_outputs
# counts its 4 of 4 in the default suite, so the plain budget case is make test-slow's
@pytest.mark.parametrize("extra,expect_trials,reason", [
    pytest.param({"search__max_trials": 3}, 3, None, marks=pytest.mark.slow),
    ({"search__max_trials": 30, "search__target": 0.0}, 1, "target val_accuracy 0.0 reached"),
    pytest.param({"search__max_trials": 30, "search__target": 0.0, **EXECUTORS}, None,
                 "target val_accuracy 0.0 reached", id="target-executors"),
    ({"search__max_trials": 30, "search__stop_after_no_improvement": 2,
      "search__metric": "val_loss", "search__mode": "max", "training__learning_rate": 0.01},
     None, "2 trials without improvement"),
    pytest.param({"search__max_trials": 30, "search__stop_after_no_improvement": 2,
                  "search__metric": "val_loss", "search__mode": "max",
                  "training__learning_rate": 0.01, "search__engine": "optuna"},
                 None, "2 trials without improvement", id="no-improvement-optuna"),
    pytest.param({"search__max_trials": 30, "search__target": 0.0, **EXECUTORS,
                  "search__engine": "optuna"}, None, "target val_accuracy 0.0 reached",
                 id="target-executors-optuna"),
])
def test_stop_conditions(spark, tiny_tabular, tmp_path, extra, expect_trials, reason):
    space = {"model.units": {"choice": [[4], [8], [16], [32]]}, "model.dropout":
             {"uniform": [0.0, 0.2]}}
    summary = tune(cfg_for(tiny_tabular, tmp_path, space, search__name="stops",
                           search__retrain="false", **extra), spark)
    if expect_trials is not None:
        assert summary["trials"] == expect_trials
    if reason:
        assert reason in summary["stopped_early"]
        assert summary["trials"] < 30


@pytest.mark.parametrize("runner", RUNNERS)
def test_timeout_stops_the_search(spark, tiny_tabular, tmp_path, runner):
    # (a warm executor's first trial starts a Python worker that imports TensorFlow)
    minutes = 0.75 if runner else 0.25
    summary = tune(cfg_for(tiny_tabular, tmp_path, search__name="timed",
                           search__max_trials=200, search__timeout_minutes=minutes,
                           search__retrain="false", **runner), spark)
    # nothing but the clock ends it: no stop rule fired, no trial failed, the budget is far off
    assert summary["stopped_early"] is None and summary["failed"] == 0
    assert 1 <= summary["trials"] < 200


@pytest.mark.parametrize("space,needle", [
    ({"training.learnin_rate": {"uniform": [0.1, 0.2]}},
     "unknown key 'training.learnin_rate'; did you mean 'training.learning_rate'?"),
    ({"training.learning_rate": {"loguniform": [0, 1]}}, "loguniform low must be > 0"),
    ({"model.activation": {"choice": ["relu", "relux"]}}, "'relux', not one of"),
])
def test_bad_space_exits_2_before_training(tiny_tabular, tmp_path, capsys, spark, space,
                                           needle):
    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, space, search__name="bad")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


def test_grid_refuses_a_continuous_dimension(tiny_tabular, tmp_path):
    with pytest.raises(ConfigError, match="training.learning_rate"):
        tune(cfg_for(tiny_tabular, tmp_path, search__name="grid", search__algorithm="grid"))


def test_a_metric_no_training_logs_exits_2_before_any_trial(tiny_tabular, tmp_path, capsys):
    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, LR_SPACE, search__name="f1",
                            search__metric="val_f1")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "search.metric is 'val_f1'" in err[0], err
    assert "val_accuracy" in err[0] and "training.metrics" in err[0], err
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store or any trial


def test_a_space_built_in_python_is_searched(spark, tiny_tabular, tmp_path):
    import sparkdl_tune as sdt

    space = sdt.SearchSpace({"training.learning_rate": sdt.LogUniform(1e-3, 3e-2),
                             "model.units": sdt.Choice([[8], [16]])})
    cfg = cfg_for(tiny_tabular, tmp_path, space={"model.dropout": 0.0},
                  search__name="python-space", search__max_trials=2, search__retrain="false",
                  search__report="false")
    summary = sdt.tune(cfg, spark, space=space)
    assert summary["trials"] == 2
    assert set(summary["best_params"]) == {"training.learning_rate", "model.units"}
    with pytest.raises(ConfigError, match="must be a sparkdl_tune.SearchSpace"):
        sdt.tune(cfg, spark, space={"model.units": [8]})


# the package's genetic algorithm end to end, driven by either engine (a Proposer): its two
# generations end the search by themselves, and no point is trained twice
@pytest.mark.parametrize("engine", ["hyperopt", "optuna"])
def test_a_genetic_search_runs_its_generations_on_either_engine(spark, tiny_tabular, tmp_path,
                                                                engine):
    space = {"model.units": {"choice": [[4], [8], [16], [32]]},
             "training.learning_rate": {"choice": [0.001, 0.003, 0.01, 0.03]}}
    summary = tune(cfg_for(tiny_tabular, tmp_path, space, search__name="genetic",
                           search__algorithm="genetic", search__engine=engine,
                           search__max_trials=20, search__genetic__population=3,
                           search__genetic__generations=2, search__retrain="false",
                           search__report="false"), spark)
    assert summary["trials"] == 6 and summary["failed"] == 0  # 3 x 2, not the budget of 20
    runs = child_runs(tmp_path, summary["parent_run_id"])
    points = [(tuple(json.loads(r.data.params["model.units"])),
               float(r.data.params["training.learning_rate"])) for r in runs]
    assert len(set(points)) == 6, points  # a child equal to a known point is bred again
