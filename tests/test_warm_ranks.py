"""Warm ranks: a distributed search on tf_distribute trains trial after trial on one running
set of ranks (only the first trial launches them), and a rank killed during a trial fails that
trial only: the next trials run on fresh ranks. Real local[2] Spark, real training."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import child_runs, tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.search.tuner import tune

SPACE = {"training.learning_rate": {"loguniform": [1e-3, 1e-1]}}


def _by_number(runs) -> dict[int, object]:
    return {int(r.data.tags["sparkdl_tune.trial"]) + 1: r for r in runs}


def test_four_trials_launch_their_ranks_once(spark, tiny_tabular, tmp_path):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="warm", search__max_trials=4,
        execution__num_proc=2, execution__backend="tf_distribute", search__algorithm="random",
        training__epochs=2, search__retrain="true", search__report="false",
        mlflow__registered_model_name="null"))
    assert cfg.execution.warm  # the default
    summary = tune(cfg, spark)
    assert summary["trials"] == 4 and summary["failed"] == 0
    # the ranks were ended with the trials: the final model's 2-rank training found its slots
    assert summary["final"]["test_metrics"]["test_accuracy"] > 0
    runs = _by_number(child_runs(tmp_path, summary["parent_run_id"]))
    launches = {n: r.data.metrics.get("launch") for n, r in runs.items()}
    assert launches == {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, launches  # one launch for 4 trials
    assert all(r.data.metrics["epochs_run"] == 2 and r.data.metrics["num_proc"] == 2
               for r in runs.values())
    # the launch is paid once: what trials 2-4 spend besides training is less than trial 1's
    overhead = {n: r.data.metrics["trial_seconds"] - r.data.metrics["train_seconds"]
                for n, r in runs.items()}
    print(f"\nwarm: 4 trials on launch 1; seconds outside training per trial: "
          f"{ {n: round(v, 1) for n, v in sorted(overhead.items())} }")


def test_warm_off_launches_each_trial(spark, tiny_tabular, tmp_path):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="cold", search__max_trials=2,
        execution__num_proc=2, execution__backend="tf_distribute", execution__warm="false",
        search__algorithm="random", search__retrain="false", search__report="false"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 2 and summary["failed"] == 0
    runs = child_runs(tmp_path, summary["parent_run_id"])
    assert [r.data.metrics.get("launch") for r in runs] == [None, None]  # no warm ranks
    assert all(r.data.metrics["num_proc"] == 2 for r in runs)


def _ranks(rank: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if proc.environ().get("SPARKDL_TUNE_RANK") == rank and "python" in proc.name():
                found.append(proc)
        except psutil.Error:
            continue
    return found


class _Killer(logging.Handler):
    """Kills rank 1's processes once trial 1 is over and trial 2 has reported an epoch."""

    def __init__(self):
        super().__init__()
        self.trial_one_done = threading.Event()
        self.killed: list[int] = []

    def emit(self, record):
        if "tune: trial 1/4 " in record.getMessage():
            self.trial_one_done.set()

    def run(self):
        if not self.trial_one_done.wait(600):
            return
        time.sleep(3.0)  # trial 2 (60 epochs) is training on the same warm ranks
        for proc in _ranks("1"):
            self.killed.append(proc.pid)
            proc.send_signal(signal.SIGKILL)


def test_a_rank_killed_in_trial_two_fails_that_trial_only(spark, tiny_tabular, tmp_path):
    # the grid runs the choices in order: trial 2 trains long enough to be killed in
    space = {"training.epochs": {"choice": [2, 60, 3, 4]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name="warm-kill", search__max_trials=4,
        execution__num_proc=2, execution__backend="tf_distribute", search__algorithm="grid",
        search__retrain="false", search__report="false"))
    killer = _Killer()
    package_log = logging.getLogger("sparkdl_tune")  # (its progress lines are INFO)
    level = package_log.level
    package_log.addHandler(killer)
    package_log.setLevel(logging.INFO)
    thread = threading.Thread(target=killer.run, daemon=True)
    thread.start()
    try:
        summary = tune(cfg, spark)
    finally:
        package_log.removeHandler(killer)
        package_log.setLevel(level)
    thread.join(5)
    assert killer.killed, "rank 1 was never found to kill"
    assert summary["trials"] == 4 and summary["failed"] == 1
    runs = _by_number(child_runs(tmp_path, summary["parent_run_id"]))
    failure = runs[2].data.tags.get("failure_reason", "")
    assert runs[2].info.status == "FAILED"
    assert "rank 1 failed first" in failure, failure
    assert "rank 0 was stopped because of it" in failure, failure
    assert [runs[n].info.status for n in (1, 3, 4)] == ["FINISHED"] * 3
    assert runs[1].data.metrics["launch"] == 1.0
    # trials 3 and 4: fresh ranks (a second launch), shared by both
    assert runs[3].data.metrics["launch"] == runs[4].data.metrics["launch"] == 2.0
    assert [runs[n].data.metrics["epochs_run"] for n in (1, 3, 4)] == [2, 3, 4]
    print(f"\nrank 1 (pids {killer.killed}) killed in trial 2: {failure}")


# a grid of learning rates, good ones first: trials 3 and 4 (1e-5, 1e-6 barely move a loss in
# an epoch) start only once trial 1 or 2 has ended, so a better score is always recorded at
# rung 1 before theirs and ASHA prunes them, whatever the machine's speed
SIDE_SPACE = {"training.learning_rate": {"choice": [0.05, 0.02, 1e-5, 1e-6]}}


# (a whole CLI search with its own local[4] JVM and 4 ranks: make test-slow; the runner's
# threads and its cancel are tests/test_executors.py's, the choice of mode this file's next)
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["hyperopt", "optuna"])
def test_two_distributed_trials_run_side_by_side_each_on_its_own_warm_ranks(tiny_tabular,
                                                                             tmp_path, engine):
    # 4 slots (local[4], its own process and JVM): 2 trials x 2 ranks at once
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml", *tune_overrides(
        tiny_tabular, tmp_path, SIDE_SPACE, search__name="side", search__max_trials=4,
        search__engine=engine,
        search__algorithm="grid", execution__num_proc=2, execution__backend="tf_distribute",
        search__parallelism=2, search__scheduler="asha", search__pruning__min_epochs=1,
        search__pruning__max_epochs=5, search__metric="val_loss", search__retrain="false",
        search__report="false", mlflow__registered_model_name="null"),
        "spark.master=local[4]", "spark.conf.spark.ui.enabled=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 trials of 2 ranks at a time, each its own barrier stage" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["trials"] == 4 and summary["failed"] == 0
    runs = _by_number(child_runs(tmp_path, summary["parent_run_id"]))
    spans = sorted((float(r.data.tags["sparkdl_tune.start"]),
                    float(r.data.tags["sparkdl_tune.start"]) + r.data.metrics["trial_seconds"])
                   for r in runs.values())
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert overlaps, spans  # two trials at once (their start-end spans overlap)
    launches = {n: r.data.metrics["launch"] for n, r in runs.items()}
    assert launches[1] != launches[2] and set(launches.values()) == {1.0, 2.0}, launches
    # every trial reports each epoch (live, through its ranks) and ASHA prunes as it does a
    # one-rank trial: trials 3 and 4 at rung 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    for n, run in runs.items():
        epochs = int(run.data.metrics["epochs_run"])
        assert run.data.metrics["num_proc"] == 2 and run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == epochs, n
    for n in (3, 4):
        assert runs[n].data.tags["sparkdl_tune.status"] == "pruned", n
        assert runs[n].data.metrics["epochs_run"] == 1
    assert summary["pruned"] >= 2
    t0 = spans[0][0]
    print(f"\nside by side: spans {[(round(a - t0, 1), round(b - t0, 1)) for a, b in spans]}, "
          f"launches {launches}, pruned {summary['pruned']}")


@pytest.mark.parametrize("settings,expected", [
    ({}, (1, "")),  # the default: one distributed trial at a time
    ({"search.parallelism": 2}, (2, "2 trials of 2 ranks at a time, each its own barrier")),
    ({"search.parallelism": 3}, (2, "(the 4 task slots hold 2)")),
    ({"search.parallelism": 2, "search.max_trials": 1}, (1, "1 trials of 2 ranks")),
    ({"search.parallelism": 2, "execution.backend": "horovod"},
     (1, "horovod trials of 2 rank(s) run one at a time")),
    ({"search.parallelism": 2, "search.cv_folds": 2}, (1, "folds take the free slots")),
])
def test_how_many_distributed_trials_run_side_by_side(settings, expected):
    from sparkdl_tune.search.tuner import side_by_side

    overrides = {"execution.num_proc": 2, "execution.backend": "tf_distribute", **settings}
    cfg = load_config(None, overrides=[f"{k}={v}" for k, v in overrides.items()])
    parallelism, why = side_by_side(cfg, available=4)
    assert parallelism == expected[0] and expected[1] in why, why


def test_the_warm_channel_checks_the_token_and_carries_jobs_both_ways():
    import socket

    import numpy as np

    from sparkdl_tune.spec.warm import WarmAddress, hello, read_hello, receive, send

    address = WarmAddress("127.0.0.1", 1234, "secret")
    assert WarmAddress.from_env(address.to_env()) == address
    driver, rank = socket.socketpair()
    with driver, rank:
        hello(rank, "secret", 1)
        assert read_hello(driver, "secret") == 1
        hello(rank, "guess", 0)
        with pytest.raises(ValueError, match="wrong token"):
            read_hello(driver, "secret")
        weights = [np.arange(300_000, dtype="float32")]  # bigger than a socket's buffer
        sender = threading.Thread(target=send, args=(rank, ("report", weights)))
        sender.start()
        got = receive(driver)
        sender.join(10)
        assert got[0] == "report" and np.array_equal(got[1][0], weights[0])
        send(driver, None)
        assert receive(rank) is None  # the end of a rank
        rank.close()
        with pytest.raises(ConnectionError):
            receive(driver)
