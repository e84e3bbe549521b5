"""The train workflow on a real local[2] Spark, real Petastorm (or Arrow), Keras and MLflow
(sqlite)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import spark_submit, train_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.driver.train import prepare_inputs, train


def mlflow_client(tmp_path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_train_in_process_logs_a_loadable_model(spark, tiny_dataset, tmp_path):
    cfg = load_config(None, overrides=train_overrides(
        tiny_dataset, tmp_path, mlflow__registered_model_name="tiny"))
    summary = train(cfg, spark)
    assert summary["num_proc"] == 1 and summary["epochs_run"] == 2
    assert 0.0 <= summary["test_metrics"]["test_accuracy"] <= 1.0
    assert summary["registered_version"] == 1
    client = mlflow_client(tmp_path)
    run = client.get_run(summary["run_id"])
    assert run.data.params["model.units"] == "(16,)"
    assert run.data.params["training.batch_size"] == "32"
    assert run.data.params["data.input_dim"] == "784"
    assert set(run.data.metrics) >= {"loss", "val_loss", "accuracy", "test_accuracy",
                                     "samples_per_second", "wall_seconds"}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    probs = np.asarray(model.predict(np.random.rand(5, 784).astype(np.float32)))
    assert probs.shape == (5, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_materialised_data_is_reused_while_unchanged(spark, tiny_dataset, tmp_path):
    cfg = load_config(None, overrides=train_overrides(  # a cache of its own: made here
        tiny_dataset, tmp_path, data__cache_url=tmp_path / "cache"))
    first = prepare_inputs(cfg, spark).data.splits["train"]
    stamp = os.path.getmtime(first.files[0][len("file://"):])
    second = prepare_inputs(cfg, spark).data.splits["train"]
    assert second.files == first.files
    assert os.path.getmtime(second.files[0][len("file://"):]) == stamp
    assert second.rows == 270
    names = sorted(os.listdir(tmp_path / "cache"))
    assert [n.split("-")[0] for n in names if not n.startswith(("validated", "."))] == \
        ["test", "train", "validation"]


@pytest.mark.parametrize("backend", [pytest.param("horovod", marks=pytest.mark.requires_horovod),
                                     "tf_distribute"])
def test_two_ranks(spark, tiny_dataset, tmp_path, backend):
    cfg = load_config(None, overrides=train_overrides(tiny_dataset, tmp_path,
                                                      execution__num_proc=2,
                                                      execution__backend=backend))
    summary = train(cfg, spark)
    assert summary["num_proc"] == 2 and summary["epochs_run"] == 2
    assert 0.0 <= summary["test_metrics"]["test_accuracy"] <= 1.0
    client = mlflow_client(tmp_path)
    run = client.get_run(summary["run_id"])
    assert run.data.metrics["num_proc"] == 2
    # the learning rate was scaled by the two ranks
    assert run.data.metrics["learning_rate"] == pytest.approx(2 * cfg.training.learning_rate)


def _validation_rows(prepared):
    import pyarrow.parquet as pq

    files = [u[len("file://"):] for u in prepared.data.splits["validation"].files]
    table = pq.ParquetDataset(files).read()
    x = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    return x, table.column("label").to_numpy()


@pytest.mark.slow
def test_two_tf_distribute_workers_learn_like_one_and_validate_every_row(spark, tiny_tabular,
                                                                         tmp_path):
    """tf_distribute with 2 workers (Keras 2 on classic; Keras 3, mended, on current): the test
    accuracy is close to one process's, and the last epoch's val metrics are those of the final
    weights on every validation row (each worker validates its own shard; the metrics add up
    across the workers), not one worker's half."""
    import tensorflow as tf

    from sparkdl_tune.driver.train import fit
    from sparkdl_tune.executor.models import rebuild

    common = {"training__epochs": 4, "training__batch_size": 16}
    one_cfg = load_config(None, overrides=train_overrides(tiny_tabular, tmp_path, **common))
    prepared = prepare_inputs(one_cfg, spark)
    one = fit(one_cfg, prepared, verbose=0)
    two_cfg = load_config(None, overrides=train_overrides(
        tiny_tabular, tmp_path, execution__num_proc=2, execution__backend="tf_distribute",
        **common))
    two = fit(two_cfg, prepare_inputs(two_cfg, spark), verbose=0)
    assert two.num_proc == 2 and two.epochs_run == 4
    a1, a2 = one.test_metrics["test_accuracy"], two.test_metrics["test_accuracy"]
    assert a1 > 0.8 and abs(a1 - a2) <= 0.1, (a1, a2)

    x, y = _validation_rows(prepared)
    probs = rebuild(two).predict(x, verbose=0)
    loss = float(tf.keras.losses.sparse_categorical_crossentropy(y, probs).numpy().mean())
    assert two.history["val_accuracy"][-1] == pytest.approx(
        float(np.mean(probs.argmax(axis=1) == y)), abs=1e-6)
    assert two.history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)


@pytest.mark.parametrize("cache,reader", [
    pytest.param("auto", "petastorm", marks=pytest.mark.requires_petastorm),
    pytest.param("off", "petastorm", marks=pytest.mark.requires_petastorm), ("off", "arrow")])
def test_each_validation_pass_covers_the_whole_split(spark, tiny_dataset, tmp_path, cache,
                                                     reader):
    """The last epoch's val metrics are those of the final weights on every validation row
    (30 rows in batches of 8: a pass that stopped at whole batches would see 24), whichever
    reader re-reads the Parquet for each pass (the cached path is the readers' own test)."""
    import pyarrow.parquet as pq
    import tensorflow as tf

    from sparkdl_tune.driver.train import fit

    cfg = load_config(None, overrides=train_overrides(
        tiny_dataset, tmp_path, training__batch_size=8, training__epochs=3,
        data__in_memory_cache=cache, data__reader=reader))
    prepared = prepare_inputs(cfg, spark)
    result = fit(cfg, prepared, verbose=0)
    assert result.extra["cached_in_memory"] is (cache == "auto")
    files = [u[len("file://"):] for u in prepared.data.splits["validation"].files]
    table = pq.ParquetDataset(files).read()
    x = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    y = table.column("label").to_numpy()
    assert len(y) == 30
    from sparkdl_tune.executor.models import rebuild

    probs = rebuild(result).predict(x, verbose=0)
    loss = float(tf.keras.losses.sparse_categorical_crossentropy(y, probs).numpy().mean())
    assert result.history["val_accuracy"][-1] == pytest.approx(float(np.mean(
        probs.argmax(axis=1) == y)), abs=1e-6)
    assert result.history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_time_limit_stops_training_on_every_rank(spark, tiny_dataset, tmp_path, num_proc):
    # 0.6 s cannot hold 6 epochs (each streams from Petastorm and validates); early stopping is
    # off, so only the time limit can end training before the 6th epoch. Under Horovod every
    # rank must stop after the same epoch: one left waiting on an allreduce would never return.
    cfg = load_config(None, overrides=train_overrides(
        tiny_dataset, tmp_path, training__epochs=6, training__time_limit_minutes=0.01,
        training__lr_schedule="cosine", training__early_stopping__enabled="false",
        execution__num_proc=num_proc))
    summary = train(cfg, spark)
    assert summary["num_proc"] == num_proc
    assert 1 <= summary["epochs_run"] < 6
    history = mlflow_client(tmp_path).get_metric_history(summary["run_id"], "loss")
    assert len(history) == summary["epochs_run"]
    assert all(np.isfinite(m.value) for m in history)  # not stopped by TerminateOnNaN either


@pytest.mark.parametrize("override,needle", [
    ("execution.num_proc=3", "execution.num_proc=3 but the cluster has 2 task slots"),
    ("model.task=regression", "set model.task=classification"),
    ("training.optimizer=adamm", "did you mean 'adam'?"),
])
def test_bad_training_config_exits_2_before_training(spark, tiny_dataset, tmp_path, capsys,
                                                      override, needle):
    args = ["train", "conf/jobs/fashion_mlp.yaml",
            *train_overrides(tiny_dataset, tmp_path), override]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune:")]
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "mlflow.db").exists() or not mlflow_client(tmp_path).search_runs(
        [mlflow_client(tmp_path).get_experiment_by_name("tests").experiment_id])


def test_spark_submit_job_trains_and_logs(tiny_dataset, tmp_path):
    """jobs/train.py under a real spark-submit; the run is read back from MLflow."""
    summary_file = tmp_path / "summary.json"
    proc = spark_submit("jobs/train.py", "conf/jobs/fashion_mlp.yaml", "--summary",
                        str(summary_file), *train_overrides(tiny_dataset, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    run = mlflow_client(tmp_path).get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert "training.learning_rate" in run.data.params
    assert len(mlflow_client(tmp_path).get_metric_history(summary["run_id"], "val_loss")) == 2
    assert "test_accuracy" in run.data.metrics
    from sparkdl_tune.config.schema import MlflowSettings
    from sparkdl_tune.tracking.model import load_model

    model = load_model(summary["model_uri"],
                       MlflowSettings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"))
    assert model.predict(np.zeros((3, 784), np.float32), verbose=0).shape == (3, 10)
