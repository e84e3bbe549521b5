"""A real `mlflow server` (sqlite backend, local artifact root, loopback port): a small tune
against it, then the server's REST API must show the search tree and the registered model."""

from __future__ import annotations

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


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    proc = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


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
