"""Shared fixtures: one real local[2] SparkSession per test session, seeded generators."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


# Profile current (Spark 4, Keras 3, pyarrow 25) has neither Horovod (it does not build against
# TensorFlow 2.21) nor Petastorm (it does not import with pyarrow 25): a test that needs one says
# so with these markers and is skipped there, by name, instead of failing on an ImportError.
_NEEDS = {"requires_horovod": "horovod", "requires_petastorm": "petastorm"}


def pytest_collection_modifyitems(config, items):
    import importlib.util

    missing = {mark: module for mark, module in _NEEDS.items()
               if importlib.util.find_spec(module) is None}
    for item in items:
        for mark, module in missing.items():
            if item.get_closest_marker(mark) is not None:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs {module}, which this environment (profile current) lacks"))
                break


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, TensorFlow's included when it is loaded."""
    random.seed(1234)
    np.random.seed(1234)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(1234)
    yield


@pytest.fixture(scope="session")
def spark():
    """A real local[2] Spark with the UI off and few shuffle partitions (tiny data)."""
    from pyspark.sql import SparkSession

    from sparkdl_tune import logs

    logs.quiet_libraries()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sparkdl-tune-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as a gzipped IDX file, the Fashion-MNIST format."""
    import gzip
    import struct

    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def tiny_fashion_dir(tmp_path_factory):
    """A Fashion-MNIST-shaped folder: 300 train and 100 test 28x28 images, 10 classes."""
    d = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, size=(n, 28, 28))
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return d


@pytest.fixture(scope="session")
def tiny_dataset(spark, tiny_fashion_dir, tmp_path_factory):
    """A prepared Fashion-MNIST-shaped dataset (270/30/100 rows), shared by training tests."""
    from sparkdl_tune.driver.datasets import FashionMnistSource
    from sparkdl_tune.driver.preparation import prepare

    out = tmp_path_factory.mktemp("prepared") / "fm"
    prepare(FashionMnistSource(str(tiny_fashion_dir)), out, spark)
    return out


def data_cache(dataset, tmp_path) -> str:
    """The ``data.cache_url`` of a test: beside a dataset made for the whole session (the
    fixtures above), so every test on it reuses one validated, materialised copy, as runs on
    unchanged data do (the copy's folder is named by a hash of the data and its settings);
    a test's own dataset (in its ``tmp_path``) gets a cache of its own there."""
    import pathlib

    data, own = pathlib.Path(dataset).resolve(), pathlib.Path(tmp_path).resolve()
    if own.parent in data.parents and own not in data.parents:
        return str(data.parent / "cache")
    return str(tmp_path / "cache")


def train_overrides(dataset, tmp_path, **extra) -> list[str]:
    """Overrides for a fast tiny training with a private MLflow store; the data cache is
    shared by the tests on a session dataset (``data_cache``)."""
    base = {
        "data.path": str(dataset),
        "data.cache_url": data_cache(dataset, tmp_path),
        "mlflow.tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "mlflow.experiment": "tests",
        "model.units": "[16]",
        "training.batch_size": "32",
        "training.epochs": "2",
    }
    base.update({k.replace("__", "."): str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def tiny_tabular(spark, tmp_path_factory):
    """A prepared separable 3-class dataset with 8 named columns (480/60/60 rows)."""
    from sparkdl_tune.driver.datasets import SyntheticClassificationSource
    from sparkdl_tune.driver.preparation import prepare

    out = tmp_path_factory.mktemp("prepared") / "blobs"
    prepare(SyntheticClassificationSource(rows=600, features=8, classes=3, seed=1), out, spark)
    return out


def tune_overrides(dataset, tmp_path, space: dict, **extra) -> list[str]:
    """A quick search on ``dataset``: in-process trials on the driver unless told otherwise."""
    import json

    base = {
        "search.space": json.dumps(space),
        "search.space_file": "null",
        "search.output_dir": str(tmp_path / "out"),
        "search.execution_mode": "distributed",
        "search.max_trials": 4,
        "training.epochs": 2,
        "model.units": "[8]",
        "training.batch_size": 64,
    }
    base.update({k.replace("__", "."): v for k, v in extra.items()})
    return train_overrides(dataset, tmp_path, **{k.replace(".", "__"): v
                                                 for k, v in base.items()})


def child_runs(tmp_path, parent_run_id: str, kind: str = "trial") -> list:
    """The ``kind`` child runs (trial, final, ...) of a search in the test's sqlite store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    return client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
                              f"tags.`sparkdl_tune.kind` = '{kind}'")


def spark_submit(*args: str, timeout: int = 300):
    """``spark-submit --master local[2] ARGS`` from the repository root with this venv's
    Python (the venv's bin on PATH); the finished process, output captured as text."""
    import subprocess

    venv_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}",
           "PYSPARK_PYTHON": sys.executable}
    return subprocess.run(
        [os.path.join(venv_bin, "spark-submit"), "--master", "local[2]",
         "--conf", "spark.ui.enabled=false", *args],
        capture_output=True, text=True, timeout=timeout, env=env)


class RunningTrials:
    """``with RunningTrials(uri, experiment) as sightings:`` polls MLflow while the block runs
    and collects ``(run_id, epochs logged)`` of every trial run seen RUNNING with epoch
    metrics (``val_loss``) — proof that a trial shows its progress before it ends."""

    def __init__(self, tracking_uri: str, experiment: str, metric: str = "val_loss"):
        import threading

        self.uri, self.experiment, self.metric = tracking_uri, experiment, metric
        self.sightings: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> list[tuple[str, int]]:
        self._thread.start()
        return self.sightings

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        while not self._stop.wait(0.05):
            try:
                exp = client.get_experiment_by_name(self.experiment)
                if exp is None:
                    continue
                for run in client.search_runs([exp.experiment_id],
                                              "tags.`sparkdl_tune.kind` = 'trial'"):
                    if run.info.status == "RUNNING" and self.metric in run.data.metrics:
                        steps = client.get_metric_history(run.info.run_id, self.metric)
                        self.sightings.append((run.info.run_id, len(steps)))
            except Exception:  # the store is being created, or is busy
                continue
