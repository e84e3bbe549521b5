"""Warm ranks: a distributed search on tf_distribute trains trial after trial on one running
set of ranks (only the first trial launches them), and a rank killed during a trial fails that
trial only: the next trials run on fresh ranks. Real local[2] Spark, real training."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import psutil
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


def test_the_warm_channel_checks_the_token_and_carries_jobs_both_ways():
    import socket

    import numpy as np
    import pytest

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
