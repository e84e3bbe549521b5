"""model.builder: the user's own Keras model, tuned with its own model.params.* dimension, on
real Spark (SparkTrials), Keras, hyperopt and MLflow."""

from __future__ import annotations

import json
import linecache

import numpy as np
import pytest
from conftest import child_runs, tune_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config, with_values
from sparkdl_tune.config.model_spec import builder_identity
from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.tuner import tune

RESIDUAL = "examples.builders:residual_mlp"


def _trials(tmp_path, parent_run_id):
    return child_runs(tmp_path, parent_run_id)


def test_example_builder_is_tuned_in_parallel_and_its_final_model_loads(spark, tiny_dataset,
                                                                         tmp_path):
    import sparkdl_tune as sdt

    space = {"model.params.width": {"choice": [8, 16]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_dataset, tmp_path, space, search__name="own-model", search__algorithm="grid",
        search__max_trials=2, search__execution_mode="parallel", search__parallelism=2,
        search__report="false", training__epochs=1, model__builder=RESIDUAL,
        model__params__blocks=1))
    summary = tune(cfg, spark)
    assert summary["trials"] == 2 and summary["failed"] == 0
    assert summary["execution_mode"] == "parallel"
    assert summary["best_params"]["model.params.width"] in (8, 16)
    widths = {r.data.params["model.params.width"] for r in _trials(tmp_path,
                                                                   summary["parent_run_id"])}
    assert widths == {"8", "16"}
    model = sdt.load_model(summary["final"]["model_uri"], cfg.mlflow)
    assert model.name == "residual_mlp"  # the user's network, not the package's MLP
    best = summary["best_params"]["model.params.width"]
    assert model.get_layer("block_0_a").units == best
    probs = np.asarray(model.predict(np.random.default_rng(0).random((3, 784), "float32"),
                                     verbose=0))
    assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_a_failing_builder_fails_its_trial_only(spark, tiny_tabular, tmp_path):
    space = {"model.params.width": {"choice": [8, 16, 4]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name="picky", search__algorithm="grid",
        search__max_trials=3, search__retrain="false", search__report="false",
        training__epochs=1, model__builder="custom_builders:picky"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 3 and summary["failed"] == 2
    assert summary["best_params"] == {"model.params.width": 8}
    reasons = {r.data.params["model.params.width"]: r.data.tags.get("failure_reason", "")
               for r in _trials(tmp_path, summary["parent_run_id"])}
    assert "model.builder custom_builders:picky raised ValueError: width 16" in reasons["16"]
    assert "output (None, 5)" in reasons["4"] and "ctx.head(x)" in reasons["4"]
    assert reasons["8"] == ""


def test_an_unimportable_builder_exits_2_before_training(spark, tiny_tabular, tmp_path, capsys):
    args = ["tune", "examples/fashion_custom.yaml",
            *tune_overrides(tiny_tabular, tmp_path, {"model.params.width": {"choice": [8]}},
                            search__name="nope", model__builder="no_such_pkg.builders:mlp")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1, err
    assert "model.builder no_such_pkg.builders:mlp cannot be imported" in err[0]
    assert "ModuleNotFoundError" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_builder_from_python_and_its_checks():
    from sparkdl_tune.errors import TrialFailed
    from sparkdl_tune.executor.models import build_model

    def wrong(ctx):
        import tensorflow as tf

        inputs = ctx.inputs()
        return tf.keras.Model(inputs, tf.keras.layers.Dense(ctx.output_units + 1)(inputs))

    cfg = load_config(None, overrides=["model.params.width=4", "model.params.blocks=1"])
    try:
        load_config(None, overrides=["model.builder=examples.builders"])
    except ConfigError as exc:
        assert "use 'package.module:function'" in str(exc)
    else:
        raise AssertionError("a builder without ':function' was accepted")
    from examples.builders import residual_mlp

    own = with_values(cfg, {"model.builder": residual_mlp})
    net = build_model(own.model, own.training, 12, 3)
    assert net.output_shape == (None, 3) and net.optimizer is not None
    bad = with_values(cfg, {"model.builder": wrong})
    try:
        build_model(bad.model, bad.training, 12, 3)
    except TrialFailed as exc:
        assert "test_builder:" in str(exc) and "needs (None, 3)" in str(exc)
    else:
        raise AssertionError("a model with the wrong output was accepted")


NOTEBOOK_CELL = """
def cell_net(ctx):
    import tensorflow as tf

    inputs = ctx.inputs()
    x = tf.keras.layers.Dense(int(ctx.params.get("width", 8)), activation="relu")(inputs)
    return tf.keras.Model(inputs, ctx.head(x))
"""


def run_cell(source: str, number: int, keep_source: bool = True):
    """What a notebook does with a cell: compile it under a file name of its own (kept in
    ``linecache``, so ``inspect.getsource`` reads it) and run it in ``__main__``; a new
    function object each time."""
    name = f"<notebook-cell-{number}>"
    if keep_source:
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    namespace = {"__name__": "__main__"}
    exec(compile(source, name, "exec"), namespace)
    return namespace["cell_net"]


def test_a_builder_function_is_identified_by_its_source_not_its_address():
    first, rerun = run_cell(NOTEBOOK_CELL, 1), run_cell(NOTEBOOK_CELL, 2)
    assert first is not rerun and repr(first) != repr(rerun)  # the addresses differ
    ident = builder_identity(first)
    assert ident == builder_identity(rerun) and ident.startswith("__main__:cell_net sha256:")
    assert "0x" not in ident
    edited = run_cell(NOTEBOOK_CELL.replace('"relu"', '"tanh"'), 3)
    assert builder_identity(edited) != ident
    # no source to read (exec of a string): the bytecode tells them apart, not the address
    bare, bare_again = (run_cell(NOTEBOOK_CELL, 4, keep_source=False),
                        run_cell(NOTEBOOK_CELL, 5, keep_source=False))
    assert builder_identity(bare) == builder_identity(bare_again)
    assert builder_identity(run_cell(NOTEBOOK_CELL.replace('"relu"', '"tanh"'), 6,
                                     keep_source=False)) != builder_identity(bare)
    assert builder_identity(RESIDUAL) == RESIDUAL  # an import string is recorded as it is


def test_a_notebook_builder_rerun_resumes_its_search_and_an_edited_one_is_refused(
        spark, tiny_tabular, tmp_path):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, {"model.params.width": {"choice": [4, 8]}},
        search__name="notebook", search__algorithm="grid", search__max_trials=2,
        search__retrain="false", search__report="false", training__epochs=1))
    first = tune(with_values(cfg, {"model.builder": run_cell(NOTEBOOK_CELL, 1)}), spark)
    assert first["trials"] == 2 and first["failed"] == 0
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db").get_run(
        first["parent_run_id"])
    recorded = json.loads(parent.data.tags["sparkdl_tune.definition"])["model.builder"]
    assert json.loads(recorded).startswith("__main__:cell_net sha256:"), recorded

    # the cell run again: a new function object at a new address, the same search
    again = tune(with_values(cfg, {"model.builder": run_cell(NOTEBOOK_CELL, 2)}), spark)
    assert again.get("already_finished") is True
    assert again["parent_run_id"] == first["parent_run_id"]

    edited = run_cell(NOTEBOOK_CELL.replace('"relu"', '"tanh"'), 3)
    with pytest.raises(ConfigError) as refused:  # exit 2 from the CLI
        tune(with_values(cfg, {"model.builder": edited}), spark)
    assert "model.builder" in str(refused.value) and "new search.name" in str(refused.value)
    assert len(_trials(tmp_path, first["parent_run_id"])) == 2  # nothing trained meanwhile


def test_a_builder_written_with_import_keras_trains_rebuilds_and_loads(tmp_path):
    """examples/keras_builders.py (``import keras``, a registered custom layer) on this
    profile's Keras: compiled by the package, trained, rebuilt from JSON the way results reach
    the driver, and logged to and loaded from MLflow with the custom layer."""
    from sparkdl_tune.config.schema import MlflowSettings
    from sparkdl_tune.executor.models import build_model, rebuild
    from sparkdl_tune.spec.result import TrainResult
    from sparkdl_tune.tracking import store
    from sparkdl_tune.tracking.model import load_model, log_training

    cfg = load_config(None, overrides=["model.builder=examples.keras_builders:keras_mlp",
                                       "model.params.width=8", "model.params.blocks=1"])
    net = build_model(cfg.model, cfg.training, 12, 3, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 12), dtype=np.float32), np.arange(32) % 3
    history = net.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert net.get_layer("scale").__class__.__name__ == "Scale"
    result = TrainResult(history=history, test_metrics={}, epochs_run=2, wall_seconds=1.0,
                         samples_per_second=1.0, num_proc=1, learning_rate=1e-3, input_dim=12,
                         model_json=net.to_json(), weights=net.get_weights())
    expected = net.predict(x[:4], verbose=0)
    np.testing.assert_allclose(rebuild(result).predict(x[:4], verbose=0), expected, rtol=1e-6)
    settings = MlflowSettings(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", experiment="keras")
    with store.start_run(settings, "keras-builder"):
        out = log_training(result, rebuild(result), {})
    loaded = load_model(out["model_uri"])
    assert loaded.get_layer("scale").__class__.__name__ == "Scale"
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), expected, rtol=1e-6)
