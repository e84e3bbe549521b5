"""model.backbone: transfer learning with progressive unfreezing, on real Keras, Spark and MLflow.

A backbone from a Keras file, from a ``models:/`` URI of the tracking store, and each named
Keras Applications architecture from a weights file the test writes itself (nothing is
downloaded).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import child_runs, train_overrides, tune_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.executor.backbone import blocks, find_trunk
from sparkdl_tune.executor.models import build_model
from sparkdl_tune.executor.unfreezing import steps_of

CNN = ["model.architecture=cnn2d", "model.input_shape=[28,28,1]", "model.units=[16]",
       "model.conv_blocks=[{filters: 4}, {filters: 8}]"]


@pytest.fixture(scope="module")
def cnn_file(tmp_path_factory):
    """A small CNN of the package (784 flat features -> 5 classes) saved as a Keras file."""
    path = tmp_path_factory.mktemp("backbone") / "cnn.keras"
    cfg = load_config(None, overrides=CNN)
    build_model(cfg.model, cfg.training, 784, 5, seed=1).save(path)
    return path


def _backbone(source, *extra: str) -> list[str]:
    return [f"model.backbone.source={source}", "model.units=[]", *extra]


@pytest.mark.parametrize("mode, trainable", [("frozen", 2), ("progressive", 4), ("scratch", 8)])
def test_a_file_backbone_is_frozen_partly_unfrozen_or_fresh(cnn_file, mode, trainable):
    import tensorflow as tf

    cfg = load_config(None, overrides=_backbone(cnn_file, f"model.backbone.mode={mode}",
                                                "model.backbone.trainable_layers=1"
                                                if mode == "progressive" else
                                                "model.backbone.trainable_layers=0"))
    net = build_model(cfg.model, cfg.training, 784, 3, seed=2)
    saved = tf.keras.models.load_model(cnn_file, compile=False)
    trunk = find_trunk(net)
    # the old 5-class head is gone; blocks top first: dense_0, conv_1, conv_0
    assert [[layer.name for layer in b] for b in blocks(trunk)] == [["dense_0"], ["conv_1"],
                                                                    ["conv_0"]]
    assert net.output_shape == (None, 3)
    assert len(net.trainable_weights) == trainable  # + the new output layer's kernel and bias
    same = np.allclose(trunk.get_layer("conv_0").get_weights()[0],
                       saved.get_layer("conv_0").get_weights()[0])
    assert same == (mode != "scratch")


# MobileNetV2 in the default suite; the two larger ones (~20 s each) in make test-slow
@pytest.mark.parametrize("arch, keras_class", [
    ("mobilenet_v2", "MobileNetV2"),
    pytest.param("efficientnet_b0", "EfficientNetB0", marks=pytest.mark.slow),
    pytest.param("resnet50", "ResNet50", marks=pytest.mark.slow)])
def test_each_keras_application_builds_from_a_local_weights_file(arch, keras_class, tmp_path):
    import tensorflow as tf

    reference = getattr(tf.keras.applications, keras_class)(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    weights = tmp_path / f"{arch}.weights.h5"  # the name Keras 3 asks of save_weights
    reference.save_weights(weights)
    cfg = load_config(None, overrides=_backbone(arch, f"model.backbone.weights={weights}",
                                                "model.input_shape=[28,28,1]",
                                                "model.backbone.trainable_layers=1"))
    net = build_model(cfg.model, cfg.training, 784, 5, seed=0)
    trunk = find_trunk(net)
    assert all(np.array_equal(a, b) for a, b in zip(reference.get_weights(),
                                                      trunk.get_weights()))
    # 28x28 grey images resized to the architecture's 32x32 minimum and repeated to RGB
    assert trunk.input_shape == (None, 32, 32, 3)
    assert [net.get_layer(n).__class__.__name__ for n in ("resize", "to_rgb")] == [
        "Resizing", "Concatenate"]
    top = {layer.name for layer in blocks(trunk)[0]}
    trainable = {layer.name for layer in trunk.layers if layer.trainable and layer.weights}
    assert trainable == top  # only the top block trains at first
    probs = net.predict(np.random.default_rng(0).random((2, 784), "float32"), verbose=0)
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    again = tf.keras.models.model_from_json(net.to_json())  # how results travel to the driver
    assert again.count_params() == net.count_params()


@pytest.mark.parametrize("backend", [pytest.param("horovod", marks=pytest.mark.requires_horovod),
                                     "tf_distribute"])
def test_progressive_unfreezing_in_a_real_training(spark, tiny_dataset, cnn_file, tmp_path,
                                                   backend):
    """patience 0: a step after every epoch, up to max_unfrozen 2 blocks; lr x 0.1 per step.
    Two ranks of each engine: both recompile after the same epochs (rank 0 decides); under
    tf_distribute the fresh optimizer is built in the strategy's scope (Keras 2 and 3)."""
    import tensorflow as tf

    import sparkdl_tune as sdt
    from sparkdl_tune.driver.train import train

    cfg = load_config(None, overrides=train_overrides(
        tiny_dataset, tmp_path, training__epochs=4, model__units="[]",
        model__backbone__source=str(cnn_file), model__backbone__patience=0,
        model__backbone__max_unfrozen=2, mlflow__registered_model_name="null",
        execution__num_proc=2, execution__backend=backend))
    summary = train(cfg, spark)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    unfrozen = [m.value for m in client.get_metric_history(summary["run_id"],
                                                           "backbone_unfrozen")]
    rates = [m.value for m in client.get_metric_history(summary["run_id"], "lr")]
    assert unfrozen == [0.0, 1.0, 2.0, 2.0]
    assert summary["num_proc"] == 2
    assert np.allclose(rates, [2e-3, 2e-4, 2e-5, 2e-5])  # 1e-3 scaled by the two ranks
    model = sdt.load_model(summary["model_uri"], cfg.mlflow)
    saved = tf.keras.models.load_model(cnn_file, compile=False)
    trunk = find_trunk(model)
    changed = {name: not np.allclose(trunk.get_layer(name).get_weights()[0],
                                     saved.get_layer(name).get_weights()[0])
               for name in ("dense_0", "conv_1", "conv_0")}
    assert changed == {"dense_0": True, "conv_1": True, "conv_0": False}


def test_a_tune_on_a_registered_model_backbone(spark, tiny_dataset, cnn_file, tmp_path):
    """Pretrain and register a CNN, then tune a head on ``models:/name/1`` (named only in the
    space: the driver ships it all the same) in parallel mode with trainable_layers searched;
    the final retrain replays the best trial's steps."""
    from sparkdl_tune.driver.train import train

    pre = load_config(None, overrides=train_overrides(
        tiny_dataset, tmp_path, training__epochs=1,
        mlflow__registered_model_name="tiny-cnn") + CNN)
    assert train(pre, spark)["registered_version"] == 1
    from sparkdl_tune.search.tuner import tune

    space = {"model.backbone.trainable_layers": {"choice": [0, 1]},
             "model.backbone.source": {"choice": ["models:/tiny-cnn/1"]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_dataset, tmp_path, space, search__name="transfer", search__algorithm="grid",
        search__max_trials=2, search__execution_mode="parallel", search__parallelism=2,
        search__report="false", training__epochs=3, model__units="[]",
        model__backbone__source=str(cnn_file), model__backbone__patience=0,
        mlflow__registered_model_name="null"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 2 and summary["failed"] == 0, summary
    trials = child_runs(tmp_path, summary["parent_run_id"])
    assert {r.data.params["model.backbone.trainable_layers"] for r in trials} == {"0", "1"}
    assert {r.data.params["model.backbone.source"] for r in trials} == {"models:/tiny-cnn/1"}
    assert all(r.data.metrics["backbone_unfrozen"] >= 1 for r in trials)
    (final,) = child_runs(tmp_path, summary["parent_run_id"], kind="final")
    best = next(r for r in trials if r.data.params["model.backbone.trainable_layers"]
                == str(summary["best_params"]["model.backbone.trainable_layers"]))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    history = {"backbone_unfrozen": [m.value for m in client.get_metric_history(
        best.info.run_id, "backbone_unfrozen")]}
    assert final.data.params["model.backbone.unfreeze_at"] == str(steps_of(history))


def test_steps_of_a_history():
    assert steps_of({"backbone_unfrozen": [0.0, 0.0, 1.0, 2.0, 2.0]}) == (2, 3)
    assert steps_of({"backbone_unfrozen": [1.0, 1.0]}) == ()
    assert steps_of({"loss": [1.0]}) is None


@pytest.mark.parametrize("override, expected", [
    ("model.backbone.source=/nope/cnn.keras",
     "model.backbone.source /nope/cnn.keras does not exist"),
    ("model.backbone.source=models:/no-such-model/1",
     "model.backbone.source models:/no-such-model/1 cannot be loaded from the tracking store"),
    ("model.backbone.source=resnet50", "source resnet50 has no weights; set weights"),
])
def test_a_backbone_that_cannot_be_had_exits_2_before_training(spark, tiny_dataset, tmp_path,
                                                              capsys, override, expected):
    args = ["train", "conf/jobs/fashion_mlp.yaml",
            *train_overrides(tiny_dataset, tmp_path, model__units="[]"), override]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and expected in err[0], err


def test_an_unknown_output_layer_exits_2(spark, tiny_dataset, cnn_file, tmp_path, capsys):
    args = ["train", "conf/jobs/fashion_mlp.yaml",
            *train_overrides(tiny_dataset, tmp_path, model__units="[]"),
            f"model.backbone.source={cnn_file}", "model.backbone.output_layer=dense_9"]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "output_layer 'dense_9' is not a layer" in err[0], err
    assert "conv_1" in err[0]


def test_a_backbone_file_missing_from_the_space_exits_2_before_training(spark, tiny_dataset,
                                                                        cnn_file, tmp_path,
                                                                        capsys):
    space = {"model.backbone.source": {"choice": [str(cnn_file), "/nope/other.keras"]}}
    args = ["tune", "conf/jobs/fashion_mlp.yaml",
            *tune_overrides(tiny_dataset, tmp_path, space, search__name="two-backbones",
                            model__units="[]", model__backbone__source=str(cnn_file))]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "/nope/other.keras does not exist" in err[0], err
    assert not (tmp_path / "out").exists()
