"""Results people can act on: the final model's test details (R², RMSE and a mean baseline;
per-class scores and the confusion matrix), the registered model and a load snippet that runs,
edge-of-range warnings, and trials compared on validation only. Real Spark, Keras, MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.search.tuner import tune

REG_SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]}}


@pytest.fixture(scope="module")
def tiny_regression(spark, tmp_path_factory):
    """y = x1 * x2 with two distractors (about 400 rows)."""
    from sparkdl_tune.driver.datasets import SyntheticRegressionSource
    from sparkdl_tune.driver.preparation import prepare

    out = tmp_path_factory.mktemp("prepared") / "reg"
    prepare(SyntheticRegressionSource(rows=400, distractors=2, noise=0.0, seed=3), out, spark)
    return out


@pytest.fixture(scope="module")
def regression_tune(spark, tiny_regression, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regtune")
    cfg = load_config(None, overrides=tune_overrides(
        tiny_regression, tmp, REG_SPACE, search__name="reg", search__max_trials=2,
        model__task="regression", training__epochs=3, model__units="[16]",
        mlflow__registered_model_name="reg_model"))
    return tune(cfg, spark), tmp


def test_regression_final_model_has_r2_rmse_and_a_mean_baseline(regression_tune):
    summary, tmp = regression_tune
    written = json.loads((tmp / "out" / "reg" / "summary.json").read_text())
    test = written["final"]["test_metrics"]
    for key in ("test_mse", "test_mae", "test_rmse", "test_r2", "test_baseline_mse",
                "test_baseline_rmse", "test_baseline_r2"):
        assert key in test, key
    assert test["test_rmse"] == pytest.approx(test["test_mse"] ** 0.5, rel=1e-6)
    assert test["test_baseline_r2"] <= 0.0  # the train mean explains nothing of the test rows
    assert written["final"]["evaluation"]["train_mean"] is not None
    print("regression final:", {k: round(v, 4) for k, v in test.items()})


def test_regression_report_shows_r2_rmse_baseline_and_the_model(regression_tune):
    summary, tmp = regression_tune
    page = (tmp / "out" / "reg" / "report" / "report.html").read_text()
    assert "Final model (test split)" in page
    assert "R²" in page and "RMSE" in page and "mean baseline" in page
    assert "reg_model/1" in page and "mlflow.pyfunc.spark_udf" in page
    # trials are compared on validation only: no test column in the trial table
    top = page.split("finished trials</h2>", 1)[1].split("</table>", 1)[0]
    assert "test_" not in top and "val_" in top


def test_summary_names_the_registered_model_and_its_pyfunc_snippet_runs(regression_tune,
                                                                       monkeypatch):
    summary, tmp = regression_tune
    model = json.loads((tmp / "out" / "reg" / "summary.json").read_text())["model"]
    assert model["registered_model"] == "reg_model/1"
    assert model["model_uri"] == "models:/reg_model/1"
    assert model["tracking_uri"] == f"sqlite:///{tmp}/mlflow.db"
    snippet = model["load"]["pyfunc"]
    assert len(snippet.splitlines()) == 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", model["tracking_uri"])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype("float32")
    scope = {"x": x}
    exec(snippet, scope)  # the text as a user would paste it
    assert np.asarray(scope["predictions"]).reshape(-1).shape == (5,)


def test_summary_spark_udf_snippet_scores_a_dataframe(regression_tune, spark, monkeypatch):
    summary, tmp = regression_tune
    model = summary["model"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", model["tracking_uri"])
    import mlflow

    mlflow.set_tracking_uri(model["tracking_uri"])
    rows = np.random.default_rng(1).uniform(-1, 1, (6, 4)).astype("float32")
    df = spark.createDataFrame([(r.tolist(),) for r in rows], "features array<float>")
    scope = {"spark": spark, "df": df}
    exec(model["load"]["spark_udf"], scope)
    got = scope["scored"].select("prediction").collect()
    assert len(got) == 6
    first = got[0]["prediction"]
    assert np.isfinite(np.asarray(first, dtype="float64")).all()


def test_classification_tune_reports_per_class_scores_and_the_confusion_matrix(
        spark, tiny_tabular, tmp_path):
    import mlflow

    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, {"training.learning_rate": {"loguniform": [1e-3, 3e-2]}},
        search__name="cls", search__max_trials=2))
    summary = tune(cfg, spark)
    final = summary["final"]
    details = final["evaluation"]
    matrix = np.array(details["confusion_matrix"])
    from sparkdl_tune.driver.dataset import read_manifest

    assert matrix.shape == (3, 3)
    assert matrix.sum() == details["rows"] == read_manifest(str(tiny_tabular)).rows["test"]
    assert set(details["per_class"]) == {"0", "1", "2"}
    assert summary["model"]["registered_model"] is None
    assert summary["model"]["model_uri"] == f"runs:/{final['run_id']}/model"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(final["run_id"])
    assert {"test_precision_0", "test_recall_2", "test_f1_1"} <= set(run.data.metrics)
    names = {a.path for a in client.list_artifacts(final["run_id"])}
    assert {"confusion_matrix.json", "confusion_matrix.png", "evaluation.json"} <= names
    page = (tmp_path / "out" / "cls" / "report" / "report.html").read_text()
    assert "Confusion matrix" in page and "precision" in page
    print("classification final:", final["test_metrics"], matrix.tolist())


def test_edge_warnings_name_the_dimension_side_and_scale():
    from sparkdl_tune.reporting.results import edge_warnings

    bounds = {"training.learning_rate": {"kind": "loguniform", "low": 1e-4, "high": 3e-3},
              "model.dropout": {"kind": "uniform", "low": 0.0, "high": 0.5},
              "model.layers": {"kind": "int", "low": 1, "high": 8}}
    lines = edge_warnings(bounds, {"training.learning_rate": "0.0029",
                                   "model.dropout": "0.01", "model.layers": "4"})
    assert lines == [
        "model.dropout: the best trial's 0.01 is at the bottom of [0, 0.5]; widen the range "
        "downward",
        "training.learning_rate: the best trial's 0.0029 is at the top of [0.0001, 0.003] "
        "(log scale); widen the range upward"]
    # 2e-4 is 20% up the log range (1e-4..3e-3), though only 3% up the linear one
    assert edge_warnings(bounds, {"training.learning_rate": 2e-4}) == []


def test_fashion_mnist_manifest_names_its_classes_and_old_manifests_still_load(tiny_dataset,
                                                                             tmp_path):
    from sparkdl_tune.driver.dataset import MANIFEST, read_manifest
    from sparkdl_tune.driver.datasets import FashionMnistSource
    from sparkdl_tune.driver.datasets.fashion_mnist import CLASS_NAMES

    on_disk = json.loads((tiny_dataset / MANIFEST).read_text())
    assert on_disk["layout"]["class_names"][7] == "Sneaker"
    assert read_manifest(tiny_dataset).layout.class_names == CLASS_NAMES
    # a subset is relabelled 0, 1, ... in the order given: its names follow
    subset = FashionMnistSource(classes=(9, 5)).layout()
    assert subset.class_names == ("Ankle boot", "Sandal") and subset.num_classes == 2
    # a manifest written before names existed (no key) loads, keeps ids, and writes the same
    # text back (the materialised copy's fingerprint hashes it)
    del on_disk["layout"]["class_names"]
    old = tmp_path / "old"
    old.mkdir()
    (old / MANIFEST).write_text(json.dumps(on_disk, indent=2))
    manifest = read_manifest(old)
    assert manifest.layout.class_names is None and manifest.layout.num_classes == 10
    assert json.loads(manifest.to_json()) == on_disk


def test_fashion_mnist_summary_and_report_name_the_classes(spark, tiny_dataset, tmp_path):
    """Per-class scores and the confusion matrix by name (T-shirt/top ... Ankle boot) in the
    summary, evaluation.json and the report; MLflow metric keys keep the class ids."""
    import html

    import mlflow

    from sparkdl_tune.driver.datasets.fashion_mnist import CLASS_NAMES

    cfg = load_config(None, overrides=tune_overrides(
        tiny_dataset, tmp_path, {"training.learning_rate": {"loguniform": [1e-3, 3e-2]}},
        search__name="named", search__max_trials=1, training__epochs=1, model__units="[16]"))
    tune(cfg, spark)
    written = json.loads((tmp_path / "out" / "named" / "summary.json").read_text())
    details = written["final"]["evaluation"]
    assert details["classes"] == list(CLASS_NAMES)
    assert list(details["per_class"]) == list(CLASS_NAMES)
    assert sum(v["support"] for v in details["per_class"].values()) == 100  # the test split
    assert details["per_class"]["Ankle boot"]["support"] == 10
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = written["final"]["run_id"]
    assert {"test_precision_0", "test_f1_9"} <= set(client.get_run(run_id).data.metrics)
    matrix_file = json.loads(open(client.download_artifacts(
        run_id, "confusion_matrix.json", str(tmp_path))).read())
    assert matrix_file["classes"] == list(CLASS_NAMES)
    page = html.unescape((tmp_path / "out" / "named" / "report" / "report.html").read_text())
    final = page.split("Final model (test split)", 1)[1]
    per_class, matrix = final.split("Confusion matrix", 1)
    for name in CLASS_NAMES:  # a row of the per-class table, a row and a column of the matrix
        assert f"<td>{name}</td>" in per_class, name
        assert f"<td>{name}</td>" in matrix, name
    head = matrix.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "T-shirt/<wbr>top" in head and "Ankle boot" in head
