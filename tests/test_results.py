"""Results people can act on: the final model's test details (R², RMSE and a mean baseline;
per-class scores and the confusion matrix), the registered model and a load snippet that runs,
edge-of-range warnings, and trials compared on validation only. Real Spark, Keras, MLflow."""

from __future__ import annotations

import json
import os

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
