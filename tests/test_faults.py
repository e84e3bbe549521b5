"""Faults a search survives: a Python worker killed during a parallel trial (the trial is FAILED
with the reason, the search spends its budget); a driver killed during the final retrain (the
rerun finishes it with exactly one registered model version, no run left RUNNING)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from conftest import tune_overrides

SPACE = {"training.learning_rate": {"loguniform": [1e-3, 1e-1]}}


def _client(tmp_path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def _runs(tmp_path, kind: str) -> list:
    client = _client(tmp_path)
    exp = client.get_experiment_by_name("tests")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`sparkdl_tune.kind` = '{kind}'")


# how parallel trials run (search.runner): every fault below must keep its behaviour with both
RUNNERS = ["sparktrials", "executors"]


def reporting_workers(driver_pid: int | None = None) -> list[int]:
    """Spark Python workers (children of a ``pyspark.daemon``, below the driver: this process
    unless told) holding an open connection to a port the driver listens on in two looks
    0.1 s apart: its report server, which a trial stays connected to from its first to its
    last epoch — so each is running a trial (a warm executor's ask for its next trial is one
    short connection, not seen twice)."""
    first = set(_connected_workers(driver_pid))
    if not first:
        return []
    time.sleep(0.1)
    return [pid for pid in _connected_workers(driver_pid) if pid in first]


def _connected_workers(driver_pid: int | None) -> list[int]:
    import psutil

    me = psutil.Process(driver_pid)
    listening = {c.laddr.port for c in me.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN}
    found = []
    for proc in me.children(recursive=True):
        try:
            parent = proc.parent()
            if parent is None or "pyspark.daemon" not in " ".join(parent.cmdline()):
                continue
            if any(c.status == psutil.CONN_ESTABLISHED and c.raddr
                   and c.raddr.port in listening for c in proc.net_connections(kind="tcp")):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


# the warm executors' case in the default suite; SparkTrials' (~30 s) is make test-slow's
@pytest.mark.parametrize("runner,engine", [
    pytest.param("sparktrials", "hyperopt", marks=pytest.mark.slow), ("executors", "hyperopt"),
    ("executors", "optuna")])
def test_a_killed_python_worker_fails_its_trial_and_the_search_spends_its_budget(
        spark, tiny_tabular, tmp_path, runner, engine):
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import tune

    budget = 4
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="lost-worker", search__max_trials=budget,
        search__execution_mode="parallel", search__parallelism=2, search__algorithm="random",
        search__retrain="false", search__report="false", search__metric="val_loss",
        search__runner=runner, search__engine=engine, training__epochs=30,
        training__early_stopping__enabled="false"))
    outcome: dict = {}

    def search():
        try:
            outcome["summary"] = tune(cfg, spark)
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=search, daemon=True)
    thread.start()
    killed = None
    deadline = time.monotonic() + 240  # a hang guard only
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        workers = reporting_workers()
        if workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # as the out-of-memory killer would
        else:
            time.sleep(0.05)
    assert killed is not None, f"no trial was seen training: {outcome}"
    thread.join(timeout=600)
    assert not thread.is_alive(), "the search did not end"
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]

    trials = _runs(tmp_path, "trial")
    failed = [r for r in trials if r.info.status == "FAILED"]
    assert len(failed) == 1, [(r.info.status, r.data.tags.get("failure_reason")) for r in trials]
    reason = failed[0].data.tags["failure_reason"]
    assert reason.startswith("executor lost: the Python worker running this trial")
    assert "Python worker exited unexpectedly" in reason  # Spark's own line is kept
    assert "\n" not in reason and " at org.apache" not in reason
    assert failed[0].data.tags["sparkdl_tune.status"] == "failed"
    assert len(trials) == budget  # one run per trial: the killed one's live run took the failure
    assert sorted(r.info.status for r in trials) == ["FAILED"] + ["FINISHED"] * (budget - 1)
    assert summary["trials"] == budget and summary["failed"] == 1
    assert summary["cancelled"] == 0
    print(f"\nkilled worker {killed}; trial {failed[0].data.tags['sparkdl_tune.trial']} "
          f"recorded FAILED: {reason}\nsummary: {summary['trials']} trials, "
          f"{summary['failed']} failed")


# -- the driver killed during the final retrain ---------------------------------------------
MODEL = "faults-model"
FINAL_RUNNING = ("SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                 "WHERE t.key = 'sparkdl_tune.kind' AND t.value = 'final' "
                 "AND r.status = 'RUNNING'")
VERSION_REGISTERED = f"SELECT version FROM model_versions WHERE name = '{MODEL}'"


def hold_when(db: str, query: str, proc, deadline: float) -> sqlite3.Connection:
    """Poll ``query`` in short read transactions until it returns a row; return the connection
    with that read transaction still open. Its shared lock on the store makes the driver's next
    MLflow write wait, so a kill sent now lands exactly at this point of the retrain."""
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    while True:
        assert proc.poll() is None, "the first run ended before the point to kill it at"
        assert time.monotonic() < deadline, "the retrain never reached the point to kill at"
        try:
            con.execute("BEGIN")
            if con.execute(query).fetchone():
                return con
            con.execute("COMMIT")
        except sqlite3.OperationalError:  # the store is being created
            if con.in_transaction:
                con.execute("ROLLBACK")
        time.sleep(0.02)


@pytest.mark.parametrize("kill_at", [pytest.param("training", marks=pytest.mark.slow),
                                     pytest.param("registered", marks=pytest.mark.slow)])
def test_driver_killed_during_the_retrain_then_rerun_registers_one_version(
        tiny_tabular, tmp_path, kill_at):
    from mlflow.entities import ViewType

    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml",
           *tune_overrides(tiny_tabular, tmp_path, SPACE, search__name="retrain-kill",
                           search__max_trials=1, search__algorithm="random",
                           search__trial_epochs=1, search__final_minutes="null",
                           search__timeout_minutes="null", search__report="false",
                           training__epochs=3, mlflow__registered_model_name=MODEL),
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]
    db = str(tmp_path / "mlflow.db")
    log_file = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    con = None
    try:
        query = FINAL_RUNNING if kill_at == "training" else VERSION_REGISTERED
        con = hold_when(db, query, proc, time.monotonic() + 300)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its Spark JVM and Python workers
        proc.wait()
        if con is not None:
            con.execute("ROLLBACK")
            con.close()
    client = _client(tmp_path)
    versions_before = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions_before) == (1 if kill_at == "registered" else 0)
    parent = _runs(tmp_path, "search")[0]
    assert parent.info.status == "RUNNING" and not parent.data.tags["sparkdl_tune.final_run_id"]
    dead_final = _runs(tmp_path, "final")[0]
    assert dead_final.info.status == "RUNNING"

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "removed the unfinished final run" in second.stderr

    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == 1, [(v.version, v.run_id) for v in versions]
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    final_id = parent.data.tags["sparkdl_tune.final_run_id"]
    assert final_id and final_id != dead_final.info.run_id
    assert client.get_run(final_id).info.status == "FINISHED"
    assert versions[0].run_id == final_id
    everything = client.search_runs([parent.info.experiment_id], "",
                                    run_view_type=ViewType.ALL)
    assert not [r.info.run_name for r in everything if r.info.status == "RUNNING"]
    assert client.get_run(dead_final.info.run_id).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in _runs(tmp_path, "final")] == [final_id]
    summary = json.loads((tmp_path / "out" / "retrain-kill" / "summary.json").read_text())
    assert summary["final"]["run_id"] == final_id
    assert summary["final"]["registered_version"] == int(versions[0].version)
    assert summary["trials"] == 1
    print(f"\nkilled at {kill_at}: {len(versions_before)} version before the kill; rerun: "
          f"version {versions[0].version} of run {final_id[:8]}, parent FINISHED")
    if kill_at != "registered":
        return
    # a driver killed after the final run ended, before the parent was marked finished: the
    # next run reuses that final run (no training, no second version)
    client.set_tag(parent.info.run_id, "sparkdl_tune.final_run_id", "")
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "is already trained" in third.stderr and "retraining trial" not in third.stderr
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert [(v.version, v.run_id) for v in versions] == [(versions[0].version, final_id)]
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sparkdl_tune.final_run_id"] == final_id
    assert [r.info.run_id for r in _runs(tmp_path, "final")] == [final_id]
    summary = json.loads((tmp_path / "out" / "retrain-kill" / "summary.json").read_text())
    assert summary["final"]["run_id"] == final_id and summary["final"]["reused"] is True
    print(f"third run: reused final run {final_id[:8]} and version {versions[0].version}")


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_a_retried_task_reruns_the_same_trial_in_one_run(tiny_tabular, tmp_path, runner):
    """``local[2,2]``: Spark retries a failed task once, as a cluster does (maxFailures 4):
    the same trial runs again, and it keeps one run (the lost attempt's run is dropped)."""
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    budget = 3
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml",
           *tune_overrides(tiny_tabular, tmp_path, SPACE, search__name="retried",
                           search__max_trials=budget, search__algorithm="random",
                           search__execution_mode="parallel", search__parallelism=2,
                           search__trial_epochs=30, search__final_minutes="null",
                           search__timeout_minutes="null", search__report="false",
                           search__retrain="false", search__metric="val_loss",
                           search__stop_after_no_improvement="null", search__runner=runner,
                           training__early_stopping__enabled="false"),
           "spark.master=local[2,2]", "spark.conf.spark.ui.enabled=false"]
    log_file = open(tmp_path / "tune.log", "w")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 300  # a hang guard only
        while killed is None:
            assert proc.poll() is None, (tmp_path / "tune.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial was seen training"
            workers = reporting_workers(proc.pid)
            if workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            else:
                time.sleep(0.05)
        assert proc.wait(timeout=600) == 0, (tmp_path / "tune.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = (tmp_path / "tune.log").read_text()
    trials = _runs(tmp_path, "trial")
    seen = [(r.info.run_name, r.info.status, r.data.tags.get("failure_reason")) for r in trials]
    print(f"\nkilled {killed}; trial runs: {seen}")
    assert sorted(r.info.run_name for r in trials) == [f"trial-{i:03d}" for i in
                                                       range(1, budget + 1)]
    assert all(r.info.status == "FINISHED" for r in trials)  # the retry finished it
    summary = json.loads((tmp_path / "out" / "retried" / "summary.json").read_text())
    assert summary["trials"] == budget and summary["failed"] == 0
    assert "runs again: Spark retried its task" in text
