"""A search trial evaluates on test only with ``search.trial_test`` and ships no weights back
(issue 22): trials are compared on validation and the final retrain trains its own model, so
nothing in a search reads either; ``train`` and the final retrain keep both. Real local[2]
Spark, Parquet and Keras."""

from __future__ import annotations

from conftest import train_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.driver.train import make_job, prepare_inputs
from sparkdl_tune.executor import worker


def _train(spark, dataset, tmp_path, trial: bool, **extra):
    cfg = load_config(None, overrides=train_overrides(dataset, tmp_path, training__epochs=1,
                                                      **extra))
    prepared = prepare_inputs(cfg, spark)
    return worker.run(make_job(cfg, prepared.data, 1, verbose=0, trial=trial))[1]


def test_a_trial_skips_the_test_pass_and_ships_no_weights(spark, tiny_tabular, tmp_path):
    trial = _train(spark, tiny_tabular, tmp_path, trial=True)
    plain = _train(spark, tiny_tabular, tmp_path, trial=False)
    assert trial.epochs_run == 1 and len(trial.history["val_accuracy"]) == 1
    assert trial.test_metrics == {} and trial.weights == []
    assert 0.0 <= plain.test_metrics["test_accuracy"] <= 1.0
    assert len(plain.weights) == 4  # [16] units: two kernels, two biases


def test_search_trial_test_brings_the_test_pass_back_without_weights(spark, tiny_tabular,
                                                                     tmp_path):
    trial = _train(spark, tiny_tabular, tmp_path, trial=True, search__trial_test="true")
    assert 0.0 <= trial.test_metrics["test_accuracy"] <= 1.0
    assert trial.weights == []
