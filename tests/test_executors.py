"""Warm executors (``search.runner: executors``): one long-lived Spark task per slot takes
trial after trial, on real local[2] Spark, Parquet, Keras and MLflow."""

from __future__ import annotations

import pytest
from conftest import child_runs, tune_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.search.tuner import tune

SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
         "model.units": {"choice": [[8], [16]]}}


def test_warm_executors_run_a_search_and_later_trials_read_no_parquet(spark, tiny_tabular,
                                                                       tmp_path):
    budget = 5
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="warm", search__max_trials=budget,
        search__execution_mode="parallel", search__parallelism=2, search__runner="executors",
        search__algorithm="random", search__retrain="false", search__report="false"))
    summary = tune(cfg, spark)
    assert summary["trials"] == budget and summary["failed"] == 0
    assert summary["execution_mode"] == "parallel"
    trials = child_runs(tmp_path, summary["parent_run_id"])
    assert len(trials) == budget and all(r.info.status == "FINISHED" for r in trials)
    # no test pass in a trial unless search.trial_test asks for one (tests/test_trial_work.py)
    assert not any(k.startswith("test_") for r in trials for k in r.data.metrics)
    sources = [r.data.tags.get("sparkdl_tune.data_source") for r in trials]
    # each slot's Python worker decodes the Parquet for its first trial only: at most two
    # trials (one per slot) read it, every later trial on a worker streams from its cache
    assert set(sources) == {"parquet", "cache"}, sources
    assert 1 <= sources.count("parquet") <= 2, sources
    assert sources.count("cache") >= budget - 2, sources
    print(f"\ndata sources of {budget} trials on 2 warm slots: {sorted(sources)}")


def test_a_bad_runner_exits_2_before_training(tiny_tabular, tmp_path, capsys):
    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, SPACE, search__name="bad-runner",
                            search__runner="warm")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "search.runner" in err[0] and "executors" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("runner", ["sparktrials"])
def test_distributed_trials_ignore_the_runner(spark, tiny_tabular, tmp_path, runner, caplog):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="ignored", search__max_trials=1,
        search__runner=runner, search__retrain="false", search__report="false"))
    with caplog.at_level("INFO", logger="sparkdl_tune"):
        summary = tune(cfg, spark)
    assert summary["execution_mode"] == "distributed" and summary["trials"] == 1
    assert "search.runner sparktrials applies to parallel trials" in caplog.text


def test_the_driver_runner_trains_on_threads_and_its_cancel_stops_their_spark_jobs(spark):
    # distributed trials side by side (search.runner "driver", chosen by the tuner): each slot
    # is a driver thread; cancel() stops the Spark jobs its trials started, at once
    import threading
    import time

    from sparkdl_tune.search.runners import make

    points, given = [(0, "quick"), (1, "hangs"), (2, "hangs")], {}
    lock, started = threading.Lock(), threading.Event()

    def take():
        with lock:
            return points.pop(0) if points else None

    def objective(point, key):
        if point == "quick":
            return {"status": "ok", "thread": threading.current_thread().name}
        started.set()  # a Spark job that would run ten minutes
        spark.sparkContext.parallelize([1], 1).map(lambda x: time.sleep(600)).collect()
        return {"status": "ok"}

    def give(number, outcome):
        with lock:
            given[number] = outcome

    runner = make("driver", spark, 2, objective, None, take, give)
    runner.start()
    assert started.wait(60)
    deadline = time.monotonic() + 60
    while not (0 in given and len(points) == 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert given[0]["result"]["thread"].startswith("sparkdl-tune-trial-slot-")
    tracker = spark.sparkContext.statusTracker()
    while len(tracker.getActiveJobsIds()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # both hanging trials' jobs are running
    runner.cancel()
    runner.close()
    while tracker.getActiveJobsIds() and time.monotonic() < deadline + 60:
        time.sleep(0.1)
    assert not tracker.getActiveJobsIds()  # the jobs ended (their tasks interrupted)
    assert not any(t.is_alive() for t in runner._threads)
    assert sorted(given) == [0, 1, 2]
    for number in (1, 2):  # the cancelled jobs ended their trials as errors (not 600 s)
        assert "error" in given[number] and "cancel" in given[number]["error"][1].lower(), \
            given[number]
