"""Secrets never leak (issue 13): a tracking URI with a password and credentials in the
environment, a real `mlflow server`, a tune through the CLI — and none of the secrets in
anything the run wrote: params, tags, metrics, artifacts, the registered model, the command's
output, the outputs folder, the report, the server's store and log, Spark's event log and
scratch folders, temporary files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

URI_SECRET = "S3CRET-URI-TOKEN"
ENV_SECRETS = {"MLFLOW_TRACKING_TOKEN": "S3CRET-ENV-TOKEN",
               "MLFLOW_TRACKING_PASSWORD": "S3CRET-ENV-PASSWORD",
               "AWS_SECRET_ACCESS_KEY": "S3CRET-AWS-KEY",
               "DATABRICKS_TOKEN": "S3CRET-DATABRICKS-TOKEN"}
SECRETS = (URI_SECRET, *ENV_SECRETS.values())
SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
         "training.batch_size": {"choice": [32, 64]}}


@pytest.mark.parametrize("uri,env,mlflow_uri,user,password", [
    ("http://u:p%40ss@h:5000/x", {}, "http://h:5000/x", "u", "p@ss"),
    ("https://u:p@h", {"MLFLOW_TRACKING_USERNAME": "e", "MLFLOW_TRACKING_PASSWORD": "f"},
     "https://h", "e", "f"),  # the environment's pair wins in MLflow: kept
    ("http://u:p@h", {"MLFLOW_TRACKING_USERNAME": "e"}, "http://h", "u", "p"),
    ("http://token@h", {}, "http://token@h", None, None),  # no pair: left to MLflow
    ("http://h:5000", {}, "http://h:5000", None, None),
    ("sqlite:///tmp/u:p@h.db", {}, "sqlite:///tmp/u:p@h.db", None, None),
])
def test_credentials_leave_the_uri_for_the_environment(monkeypatch, uri, env, mlflow_uri, user,
                                                        password):
    from sparkdl_tune.tracking.uri import credentials_to_env

    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert credentials_to_env(uri) == mlflow_uri
    assert os.environ.get("MLFLOW_TRACKING_USERNAME") == user
    assert os.environ.get("MLFLOW_TRACKING_PASSWORD") == password


@pytest.mark.parametrize("override", [
    f"mlflow.tracking_uri={{bad: http://u:{URI_SECRET}@h}}",  # a value echoed in the error
    f"mlflow.experiment=[http://u:{URI_SECRET}@h]",
    f"mlflow.tracking_uri=http://u:{URI_SECRET}@127.0.0.1:1",  # nothing listens there
])
def test_a_refused_config_names_no_secret(tmp_path, capsys, override):
    from sparkdl_tune.cli import main
    from sparkdl_tune.errors import EXIT_BAD_INPUT

    job = tmp_path / "job.yaml"
    job.write_text("{}\n")
    assert main(["train", str(job), override]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "sparkdl-tune: error:" in err and "***@" in err
    assert URI_SECRET not in err


def test_an_api_error_with_a_credentialed_uri_is_redacted_like_the_cli(tmp_path):
    """A notebook calling the public API sees the CLI's redaction (issue 20, item 5): the same
    exception type and exit code, no secret in its message nor in what it was raised from."""
    import traceback

    import sparkdl_tune as sdt

    job = tmp_path / "job.yaml"
    job.write_text("{}\n")
    with pytest.raises(sdt.ConfigError) as config:  # the loader echoes the value it refuses
        sdt.load_config(str(tmp_path), files=[str(job)],
                        overrides=[f"mlflow.tracking_uri={{bad: http://u:{URI_SECRET}@h}}"])
    with pytest.raises(sdt.DataError) as data:  # a dataset path that is a URL with a password
        sdt.read_manifest(f"http://u:{URI_SECRET}@h/datasets/x")
    for caught in (config, data):
        shown = "".join(traceback.format_exception(caught.value))
        assert URI_SECRET not in shown and "***@h" in str(caught.value), shown
        assert caught.value.exit_code == 2


def test_every_public_function_redacts_what_leaves_it():
    """Every function of the public API carries the redaction, so a new one cannot forget it."""
    import inspect

    import sparkdl_tune as sdt

    functions = {n: getattr(sdt, n) for n in sdt.__all__
                 if inspect.isfunction(getattr(sdt, n))}
    assert {"tune", "train", "prepare", "report", "load_config", "load_model"} <= set(functions)
    unwrapped = [n for n, f in functions.items() if not hasattr(f, "__wrapped__")]
    assert unwrapped == []


def test_an_error_raised_from_a_credentialed_cause_is_redacted_in_the_chain():
    from sparkdl_tune.errors import ConfigError, public

    @public
    def fails():
        try:
            raise ValueError(f"no answer from https://u:{URI_SECRET}@h/api")
        except ValueError as exc:
            raise ConfigError(f"mlflow.tracking_uri https://u:{URI_SECRET}@h: unreachable") \
                from exc

    with pytest.raises(ConfigError) as caught:
        fails()
    assert str(caught.value) == "mlflow.tracking_uri https://***@h: unreachable"
    assert str(caught.value.__cause__) == "no answer from https://***@h/api"
    assert caught.value.exit_code == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real server (sqlite backend, proxied artifacts) under tmp_path/server; its URL."""
    root = tmp_path / "server"
    root.mkdir()
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen(
            [exe, "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{root}/server.db",
             "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def files_holding(root, secrets) -> dict[str, list[str]]:
    """Every file under ``root`` (bytes, as written: text, sqlite, parquet, pngs, logs) that
    holds one of ``secrets``, and which."""
    found: dict[str, list[str]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                blob = f.read()
            hits = [s for s in secrets if s.encode() in blob]
            if hits:
                found[path] = hits
    return found


def mlflow_records(url: str) -> str:
    """Everything MLflow holds as metadata, as one text: experiments, every run (info,
    params, tags, metric keys), registered models and their versions."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    parts = []
    for exp in client.search_experiments(view_type=3):
        parts.append(repr(exp))
        for run in client.search_runs([exp.experiment_id], run_view_type=3, max_results=1000):
            parts += [repr(run.info), json.dumps(run.data.params), json.dumps(run.data.tags),
                      json.dumps(sorted(run.data.metrics))]
        for logged in client.search_logged_models([exp.experiment_id]):  # MLflow 3's models
            parts.append(repr(logged))
    for model in client.search_registered_models():
        parts.append(repr(model))
        for version in client.search_model_versions(f"name='{model.name}'"):
            parts.append(repr(version))
    return "\n".join(parts)


@pytest.mark.slow  # ~1 minute end to end (a server, a tune, a Horovod retrain): make test-slow
def test_no_secret_in_anything_the_run_wrote(tiny_tabular, tmp_path, mlflow_server):
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    secret_uri = mlflow_server.replace("http://", f"http://sdt-user:{URI_SECRET}@")
    given = tmp_path / "given"  # what the user wrote: the only place the secrets may be
    given.mkdir()
    job = given / "job.yaml"
    job.write_text(json.dumps({"mlflow": {"tracking_uri": secret_uri, "experiment": "secrets",
                                          "registered_model_name": "secret-free"},
                               "search": {"space": SPACE}}))
    work = tmp_path / "work"  # the command's cwd, temp folder and Spark's scratch space
    (work / "tmp").mkdir(parents=True)
    venv_bin = os.path.dirname(sys.executable)
    env = {**os.environ, **ENV_SECRETS, "MLFLOW_TRACKING_USERNAME": "sdt-user",
           "MLFLOW_TRACKING_URI": secret_uri, "TMPDIR": str(work / "tmp"),
           "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    out = work / "out"
    cmd = [os.path.join(venv_bin, "sparkdl-tune"), "tune", "-v", str(job),
           f"data.path={tiny_tabular}", f"data.cache_url={work / 'cache'}",
           "search.name=secrets", "search.space_file=null", "search.algorithm=random",
           "search.execution_mode=parallel", "search.parallelism=2", "search.max_trials=3",
           "search.report=true", f"search.output_dir={out}", "model.units=[8]",
           "training.epochs=1", "training.batch_size=64",
           "execution.num_proc=2",  # trials in Spark tasks, the retrain a Horovod job
           "spark.master=local[2]",
           "spark.conf.spark.ui.enabled=false", "spark.conf.spark.eventLog.enabled=true",
           f"spark.conf.spark.eventLog.dir={work / 'events'}",
           f"spark.conf.spark.local.dir={work / 'spark-local'}"]
    (work / "events").mkdir()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    (work / "stdout.txt").write_text(proc.stdout)
    (work / "stderr.txt").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["trials"] == 3 and summary["final"]["registered_version"] == 1
    assert os.path.isfile(summary["report"])
    assert "Horovod job on 2 Spark tasks" in proc.stderr  # the ranks' output is checked too
    assert os.listdir(work / "events"), "no Spark event log: nothing checked there"

    # MLflow's metadata, read back through the API with plain credentials
    records = mlflow_records(mlflow_server)
    assert summary["parent_run_id"] in records and "secret-free" in records
    assert [s for s in SECRETS if s in records] == []
    # every artifact of every run, downloaded
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("secrets")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert len(runs) >= 5  # parent, 3 trials, the final model
    downloads = tmp_path / "downloads"
    for run in runs:
        client.download_artifacts(run.info.run_id, "", str(downloads / run.info.run_id))
    for logged in client.search_logged_models([exp.experiment_id]):
        download_artifacts(artifact_uri=logged.artifact_location,
                           dst_path=str(downloads / logged.model_id), tracking_uri=mlflow_server)
    assert any(name == "MLmodel" for _, _, names in os.walk(downloads) for name in names)
    assert files_holding(downloads, SECRETS) == {}
    # the command's output, its outputs and report, Spark's event log and scratch space, temp
    # files, the server's database, artifact store and log: everything but the job file
    assert {s for s in SECRETS if s in proc.stdout + proc.stderr} == set()
    assert files_holding(work, SECRETS) == {}
    assert files_holding(tmp_path / "server", SECRETS) == {}
