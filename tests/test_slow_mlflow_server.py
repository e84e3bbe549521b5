"""A real `mlflow server` (sqlite backend, local artifact root, loopback port): a small tune
against it, then the server's REST API must show the search tree and the registered model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from conftest import tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.search.tuner import tune

pytestmark = pytest.mark.slow
SPACE = {"model.units": {"choice": [[8], [16]]},
         "training.learning_rate": {"loguniform": [1e-3, 1e-2]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path, port: int) -> subprocess.Popen:
    """``mlflow server`` on ``port`` with its store under ``tmp_path``; returns once healthy."""
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    proc = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=open(tmp_path / "server.log", "a"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "mlflow server did not come up"
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen, sig: int = 15) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


def api(url, path, **params):
    r = requests.get(f"{url}/api/2.0/mlflow/{path}", params=params, timeout=30)
    r.raise_for_status()
    return r.json()


def test_tune_against_a_real_mlflow_server(spark, tiny_tabular, tmp_path, mlflow_server,
                                           monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    overrides = [o for o in tune_overrides(tiny_tabular, tmp_path, SPACE,
                                           search__name="served", search__max_trials=3,
                                           mlflow__registered_model_name="served-model")
                 if not o.startswith("mlflow.tracking_uri=")]
    summary = tune(load_config(None, overrides=overrides), spark)
    assert summary["trials"] == 3

    exp = api(mlflow_server, "experiments/get-by-name", experiment_name="tests")["experiment"]
    body = {"experiment_ids": [exp["experiment_id"]], "max_results": 100}
    runs = requests.post(f"{mlflow_server}/api/2.0/mlflow/runs/search", json=body,
                         timeout=30).json()["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags) if t.get("sparkdl_tune.kind") == "search"]
    assert len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    assert parent_id == summary["parent_run_id"]
    children = [(r, t) for r, t in zip(runs, tags)
                if t.get("mlflow.parentRunId") == parent_id and
                t.get("sparkdl_tune.kind") == "trial"]
    assert len(children) == 3
    for run, _ in children:
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert {"model.units", "training.learning_rate"} <= set(params)
        assert {"objective", "trial_seconds", "val_accuracy", "loss"} <= metrics
    versions = api(mlflow_server, "registered-models/get",
                   name="served-model")["registered_model"]["latest_versions"]
    assert versions and versions[0]["version"] == "1"
    assert versions[0]["run_id"] == summary["final"]["run_id"]


def search_runs(url, filter_string=""):
    found = requests.get(f"{url}/api/2.0/mlflow/experiments/get-by-name",
                         params={"experiment_name": "tests"}, timeout=30)
    if found.status_code == 404:  # the search has not created it yet
        return []
    exp = found.json()["experiment"]
    body = {"experiment_ids": [exp["experiment_id"]], "max_results": 1000,
            "filter": filter_string}
    r = requests.post(f"{url}/api/2.0/mlflow/runs/search", json=body, timeout=30)
    r.raise_for_status()
    runs = r.json().get("runs", [])
    for run in runs:
        run["tags"] = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
    return runs


def test_a_server_killed_mid_search_loses_no_trial(tiny_tabular, tmp_path):
    """issue 13: the server is SIGKILLed after 2 trials; the search goes on, keeps the rest
    locally and ends saying where; the server comes back; the same command records them and
    finishes: every trial in MLflow exactly once, nothing left RUNNING."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    space = {"training.learning_rate": {"loguniform": [1e-3, 1e-2]}}
    args = [o for o in tune_overrides(tiny_tabular, tmp_path, space, search__name="outage",
                                      search__max_trials=6, search__execution_mode="parallel",
                                      search__parallelism=2, training__epochs=25)
            if not o.startswith("mlflow.tracking_uri=")] + [f"mlflow.tracking_uri={url}"]
    job = os.path.join(os.path.dirname(__file__), "..", "conf", "jobs", "fashion_tune.yaml")
    args += ["search.trial_epochs=25", "search.timeout_minutes=null",
             "search.final_minutes=null", "search.stop_after_no_improvement=null"]
    command = [sys.executable, "-m", "sparkdl_tune.cli", "tune", job, *args]
    log = open(tmp_path / "tune1.log", "w")
    tune = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # two trials recorded: the server goes away
            finished = [r for r in search_runs(url, "tags.`sparkdl_tune.kind` = 'trial'")
                        if r["info"]["status"] == "FINISHED"]
            if len(finished) >= 2:
                break
            assert tune.poll() is None, (tmp_path / "tune1.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two trials were recorded"
            time.sleep(0.5)
        stop_server(server, 9)
        out, _ = tune.communicate(timeout=600)
    finally:
        if tune.poll() is None:
            tune.kill()
    text = (tmp_path / "tune1.log").read_text()
    pending = tmp_path / "out" / "outage" / "pending-mlflow"
    assert tune.returncode == 1, text[-3000:]
    assert "is unreachable" in text and str(pending) in text
    kept = sorted(p.name for p in pending.glob("trial-*.json"))
    assert kept, text[-3000:]
    print(f"first run: exit 1, {len(kept)} trial record(s) kept in {pending}: {kept}")

    server = start_server(tmp_path, port)  # back, same store
    try:
        again = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        trials = search_runs(url, "tags.`sparkdl_tune.kind` = 'trial'")
        numbers = sorted(int(r["tags"]["sparkdl_tune.trial"]) for r in trials)
        trials.sort(key=lambda r: int(r["tags"]["sparkdl_tune.trial"]))
        print("trial runs after the rerun (number: status):",
              ", ".join(f"{int(r['tags']['sparkdl_tune.trial']) + 1}: {r['info']['status']}"
                        for r in trials))
        assert numbers == list(range(6)), numbers  # every trial, exactly once
        assert {r["info"]["status"] for r in trials} == {"FINISHED"}
        everything = search_runs(url)
        assert not [r for r in everything if r["info"]["status"] == "RUNNING"]
        parents = [r for r in everything if r["tags"].get("sparkdl_tune.kind") == "search"]
        assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
        assert not pending.exists()
        summary = json.loads(again.stdout)
        assert summary["trials"] == 6 and summary["final"]["run_id"]
    finally:
        stop_server(server)
