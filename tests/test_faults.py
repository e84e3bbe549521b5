"""Faults a search survives: a Python worker killed during a parallel trial (the trial is FAILED
with the reason, the search spends its budget); a driver killed during the final retrain (the
rerun finishes it with exactly one registered model version, no run left RUNNING)."""

from __future__ import annotations

import os
import signal
import threading
import time

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


def reporting_workers() -> list[int]:
    """Spark Python workers (children of a ``pyspark.daemon``, below this process) holding an
    open connection to a port this process listens on: the driver's report server, which a
    trial stays connected to from its first to its last epoch — so each is running a trial."""
    import psutil

    me = psutil.Process()
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


def test_a_killed_python_worker_fails_its_trial_and_the_search_spends_its_budget(
        spark, tiny_tabular, tmp_path):
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import tune

    budget = 4
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="lost-worker", search__max_trials=budget,
        search__execution_mode="parallel", search__parallelism=2, search__algorithm="random",
        search__retrain="false", search__report="false", search__metric="val_loss",
        training__epochs=30, training__early_stopping__enabled="false"))
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
