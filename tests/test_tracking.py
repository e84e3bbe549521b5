"""MLflow tracking against real SQLite stores in temporary directories, with a real Keras model;
the tracking-server check against a real HTTP server on localhost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sparkdl_tune.config.loader import as_flat_dict  # noqa: E402
from sparkdl_tune.config.schema import Config, MlflowSettings  # noqa: E402
from sparkdl_tune.executor.models import rebuild  # noqa: E402
from sparkdl_tune.spec.result import TrainResult  # noqa: E402
from sparkdl_tune.tracking import store as tracking  # noqa: E402
from sparkdl_tune.tracking.model import load_model, log_training  # noqa: E402

INPUT_DIM, CLASSES = 5, 3


@pytest.fixture(scope="module")
def trained():
    """A real 2-epoch training on 64 random rows: (TrainResult, Keras model, sample rows)."""
    from sparkdl_tune.config.model_spec import ModelSpec, TrainingSpec
    from sparkdl_tune.executor.models import build_model

    rng = np.random.default_rng(0)
    x = rng.random((64, INPUT_DIM), dtype=np.float32)
    y = rng.integers(0, CLASSES, 64)
    model = build_model(ModelSpec(units=(8,)), TrainingSpec(epochs=2), INPUT_DIM, CLASSES, seed=0)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    test = model.evaluate(x, y, verbose=0, return_dict=True)
    result = TrainResult(
        history=history, test_metrics={f"test_{k}": v for k, v in test.items()}, epochs_run=2,
        wall_seconds=1.5, samples_per_second=123.0, num_proc=1, learning_rate=1e-3,
        input_dim=INPUT_DIM, model_json=model.to_json(), weights=model.get_weights())
    return result, model, x[:7]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One SQLite store for the module: creating its schema takes seconds."""
    db = tmp_path_factory.mktemp("mlflow") / "m.db"
    return MlflowSettings(tracking_uri=f"sqlite:///{db}", experiment="tests")


def client_for(settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking.tracking_uri(settings))


def test_log_training_records_params_metrics_and_a_loadable_model(trained, settings):
    import mlflow

    result, model, x = trained
    cfg = Config(mlflow=MlflowSettings(tracking_uri="https://user:secret@tracking.example"))
    params = {**as_flat_dict(cfg), "odd key:(x)": "v", "long": "x" * 7000}
    with tracking.start_run(settings, "train") as run:
        out = log_training(result, model, params)

    client = client_for(settings)
    logged = client.get_run(run.info.run_id)
    assert out["run_id"] == run.info.run_id and out["registered_version"] is None
    assert logged.info.status == "FINISHED"
    assert logged.data.params["training.optimizer"] == "adam"
    assert logged.data.params["odd key__x_"] == "v"
    assert len(logged.data.params["long"]) == 6000
    assert "secret" not in str(logged.data.params)
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in sorted(loss, key=lambda m: m.step)] == [0, 1]
    assert [m.value for m in sorted(loss, key=lambda m: m.step)] == pytest.approx(
        result.history["loss"])
    metrics = logged.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(result.test_metrics["test_accuracy"])
    assert metrics["samples_per_second"] == 123.0 and metrics["epochs_run"] == 2

    expected = model.predict(x, verbose=0)
    keras_model = load_model(out["model_uri"])
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), expected, rtol=1e-6)
    predicted = np.asarray(mlflow.pyfunc.load_model(out["model_uri"]).predict(x))
    assert predicted.shape == (len(x), CLASSES)
    np.testing.assert_allclose(predicted, expected, rtol=1e-6)
    signature = mlflow.models.get_model_info(out["model_uri"]).signature
    assert signature.inputs.inputs[0].shape == (-1, INPUT_DIM)
    assert signature.outputs.inputs[0].shape == (-1, CLASSES)
    # Artifacts sit next to the database, not in whatever directory the tests run from.
    artifact_dir = Path(tracking.tracking_uri(settings)[len("sqlite:///"):]).parent
    assert client.get_experiment(logged.info.experiment_id).artifact_location.startswith(
        artifact_dir.as_uri())


def test_registering_twice_creates_versions_1_and_2(trained, settings):
    result, _, _ = trained
    versions = []
    for i in range(2):
        with tracking.start_run(settings, f"register-{i}"):
            versions.append(log_training(result, rebuild(result), {"i": i},
                                         register_name="sparkdl-tune-test"))
    assert [v["registered_version"] for v in versions] == [1, 2]
    found = client_for(settings).search_model_versions("name='sparkdl-tune-test'")
    assert sorted(int(v.version) for v in found) == [1, 2]


def test_child_runs_nest_under_the_parent_and_are_searchable(settings):
    import mlflow

    with tracking.start_run(settings, "search", tags={"search": "s1"}) as parent:
        parent_id = parent.info.run_id
        with tracking.start_run(settings, "trial-0", parent_run_id=parent_id) as child:
            tracking.log_params({"units": 8})
        assert mlflow.active_run().info.run_id == parent_id
    # A resumed search adds children to a parent that is no longer active.
    with tracking.start_run(settings, "trial-1", parent_run_id=parent_id):
        pass
    assert mlflow.active_run() is None

    client = client_for(settings)
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent_id
    experiment_id = parent.info.experiment_id
    children = client.search_runs([experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(r.data.tags["mlflow.runName"] for r in children) == ["trial-0", "trial-1"]
    assert client.get_run(parent_id).data.tags["search"] == "s1"


def test_default_store_is_sqlite_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = MlflowSettings(experiment="default-store")
    assert tracking.tracking_uri(settings) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.setup(settings) == f"sqlite:///{tmp_path}/mlflow.db"
    with tracking.start_run(settings, "r") as run:
        tracking.log_params({"a": 1})
    assert (tmp_path / "mlflow.db").is_file()
    assert client_for(settings).get_run(run.info.run_id).data.params == {"a": "1"}


def test_credentials_are_redacted(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:secret@mlflow.example:443/path")
    uri = tracking.tracking_uri(MlflowSettings())
    assert uri == "https://user:secret@mlflow.example:443/path"  # MLflow itself needs it
    assert tracking.redact(uri) == "https://***@mlflow.example:443/path"
    configured = MlflowSettings(tracking_uri="http://user:secret@host")
    assert tracking.redact(tracking.tracking_uri(configured)) == "http://***@host"
    assert "secret" not in tracking.redact("retry http://token@a and http://u:secret@b")


def test_log_failure_marks_the_run_failed_with_its_reason(settings):
    with tracking.start_run(settings, "trial-bad") as run:
        tracking.log_failure("NaN loss at epoch 3 (store http://u:secret@host)")
    with pytest.raises(ValueError), tracking.start_run(settings, "trial-raises") as raised:
        raise ValueError("boom")
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        tracking.log_failure("nowhere to record this")

    client = client_for(settings)
    failed = client.get_run(run.info.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure_reason"].startswith("NaN loss at epoch 3")
    assert "secret" not in failed.data.tags["failure_reason"]
    assert client.get_run(raised.info.run_id).info.status == "FAILED"


def test_importing_the_module_does_not_import_mlflow():
    code = "import sys, sparkdl_tune.tracking.store; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False"


NO_EXPERIMENT = (404, "application/json", '{"error_code": "RESOURCE_DOES_NOT_EXIST"}')


class _Server:
    """A real HTTP server on localhost that answers like a tracking server we configure:
    ``accept`` holds the Authorization headers it takes; others get ``refuse`` (401)."""

    def __init__(self, accept=(), refuse=401, answer=NO_EXPERIMENT):
        import http.server
        import threading

        outer = self
        self.accept, self.refuse, self.answer, self.seen = set(accept), refuse, answer, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.seen.append((self.path, self.headers.get("Authorization")))
                auth = self.headers.get("Authorization")
                if outer.accept and auth not in outer.accept:
                    status, kind, body = outer.refuse, "application/json", '{"error": "no"}'
                else:
                    status, kind, body = outer.answer
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_mlflow_credentials(monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _basic(user, password):
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_server_that_refuses_the_credentials_is_a_config_error(no_mlflow_credentials):
    from sparkdl_tune.errors import ConfigError

    env = no_mlflow_credentials
    with _Server(accept={_basic("ann", "pw"), "Bearer tok"}) as server:
        settings = MlflowSettings(tracking_uri=server.url, experiment="exp one")
        with pytest.raises(ConfigError) as err:
            tracking.setup(settings)  # stops before MLflow's client retries anything
        assert str(err.value) == (
            f"the MLflow tracking server at {server.url} refused the credentials (HTTP 401); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN, to an account that may read and write there")
        assert server.seen == [("/api/2.0/mlflow/experiments/get-by-name?experiment_name=exp+one",
                                None)]

        # user:password in the URI, redacted in the message
        wrong = MlflowSettings(tracking_uri=server.url.replace("//", "//ann:secret@"))
        with pytest.raises(ConfigError, match="refused the credentials") as err:
            tracking.check_reachable(wrong)
        assert "secret" not in str(err.value) and "http://***@127.0.0.1" in str(err.value)
        right = MlflowSettings(tracking_uri=server.url.replace("//", "//ann:pw@"))
        tracking.check_reachable(right)

        env.setenv("MLFLOW_TRACKING_TOKEN", "tok")
        tracking.check_reachable(settings)
        env.setenv("MLFLOW_TRACKING_USERNAME", "ann")
        env.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
        tracking.check_reachable(settings)
        assert [auth for _, auth in server.seen[-2:]] == ["Bearer tok", _basic("ann", "pw")]

        env.setenv("MLFLOW_TRACKING_PASSWORD", "nope")
        server.refuse = 403
        with pytest.raises(ConfigError, match=r"refused the credentials \(HTTP 403\)"):
            tracking.check_reachable(settings)
        env.setenv("MLFLOW_TRACKING_AUTH", "some_plugin")  # its credentials are not ours to see
        tracking.check_reachable(settings)


@pytest.mark.parametrize("answer, message", [
    ((500, "text/plain", "boom"), "answered HTTP 500 Internal Server Error; check the server's"),
    ((404, "text/html", "<h1>Not Found</h1>"), "answered HTTP 404 to the MLflow REST API"),
    ((200, "text/html", "<form>log in</form>"), "with text/html, not MLflow's JSON"),
])
def test_a_server_that_is_not_a_working_mlflow_is_a_config_error(no_mlflow_credentials, answer,
                                                                 message):
    from sparkdl_tune.errors import ConfigError

    with _Server(answer=answer) as server:
        with pytest.raises(ConfigError, match=re.escape(message)) as err:
            tracking.check_reachable(MlflowSettings(tracking_uri=server.url))
    assert server.url in str(err.value) and "mlflow.tracking_uri" in str(err.value)


def test_only_http_stores_are_checked(no_mlflow_credentials, tmp_path):
    from sparkdl_tune.errors import ConfigError

    for uri in (f"sqlite:///{tmp_path}/none/m.db", f"file://{tmp_path}/none", "databricks"):
        assert tracking.check_reachable(MlflowSettings(tracking_uri=uri)) is None
    with _Server() as server:  # an MLflow server without the experiment: fine, setup creates it
        tracking.check_reachable(MlflowSettings(tracking_uri=server.url + "/"))
    assert server.seen[0][0].startswith("/api/2.0/mlflow/experiments/get-by-name?")
    no_mlflow_credentials.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"cannot reach the MLflow tracking server at "
                                          r"http://127.0.0.1:9 \(connection refused.*or fix "
                                          r"MLFLOW_TRACKING_URI$"):
        tracking.check_reachable(MlflowSettings())
