"""Model space: specs from YAML, Keras models built from them, and the errors users see."""

import math
import os
import pathlib
import subprocess
import sys
import typing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from sparkdl_tune.config import model_spec  # noqa: E402
from sparkdl_tune.config.loader import build, load_config, read_yaml  # noqa: E402
from sparkdl_tune.config.model_spec import (  # noqa: E402
    ConvBlock,
    EarlyStoppingSpec,
    ModelSpec,
    ReduceLRSpec,
    TrainingSpec,
    dense_widths,
)
from sparkdl_tune.config.schema import Config  # noqa: E402
from sparkdl_tune.errors import ConfigError  # noqa: E402
from sparkdl_tune.executor.compilation import make_optimizer, resolve_head  # noqa: E402
from sparkdl_tune.executor.models import build_model, make_callbacks  # noqa: E402
from sparkdl_tune.keras_compat import keras_major  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
INPUT_DIM = 16
SMALL = ModelSpec(units=(8,))
ONE_BLOCK = (ConvBlock(filters=4),)


@pytest.fixture(autouse=True)
def _seeded():
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)


def _fit(model, num_classes=None, rows=32):
    """Train one epoch on random rows; return the final training loss."""
    rng = np.random.default_rng(0)
    x = rng.random((rows, model.input_shape[-1]), dtype=np.float32)
    y = rng.integers(0, num_classes, rows) if num_classes else rng.random(rows, dtype=np.float32)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return history.history["loss"][-1]


def _dense_widths(model):
    return [layer.units for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]


def test_defaults_are_a_fashion_mnist_mlp():
    model, training = ModelSpec(), TrainingSpec()
    assert (model.task, model.architecture, model.dense_units) == ("classification", "mlp",
                                                                   (256, 128))
    assert (model.activation, model.kernel_initializer) == ("relu", "glorot_uniform")
    assert (training.optimizer, training.learning_rate) == ("adam", 1e-3)
    assert (training.batch_size, training.epochs, training.loss) == (128, 3, "auto")


def test_conf_base_model_yaml_matches_the_dataclass_defaults():
    data, origins = read_yaml(ROOT / "conf" / "base" / "model.yaml")
    cfg = build(Config, data, origins)
    assert (cfg.model, cfg.training) == (ModelSpec(), TrainingSpec())


@pytest.mark.parametrize("units, expected", [((100,), 79_510), ((512, 256, 128, 64), 575_050)])
def test_dense_parameter_counts(units, expected):
    model = build_model(ModelSpec(units=units), TrainingSpec(), input_dim=784, num_classes=10)
    assert model.count_params() == expected


@pytest.mark.parametrize("n_layers, width, shape, expected", [
    (4, 256, "constant", (256, 256, 256, 256)),
    (4, 256, "pyramid", (256, 128, 64, 32)),
    (4, 256, "funnel", (256, 192, 128, 64)),
    (3, 100, "funnel", (100, 62, 25)),
    (1, 64, "funnel", (64,)),
    (0, 64, "pyramid", ()),
])
def test_n_layers_and_shape_give_the_documented_widths(n_layers, width, shape, expected):
    assert dense_widths(n_layers, width, shape) == expected
    spec = ModelSpec(n_layers=n_layers, layer_units=width, shape=shape)
    model = build_model(spec, TrainingSpec(), input_dim=INPUT_DIM, num_classes=3)
    assert _dense_widths(model) == [*expected, 3]


def test_explicit_units_override_n_layers():
    spec = ModelSpec(units=(7, 5), n_layers=4, shape="constant")
    assert spec.dense_units == (7, 5)


@pytest.mark.parametrize("architecture, input_shape, expected_image", [
    ("mlp", None, None),
    ("cnn1d", None, (16, 1)),
    ("cnn2d", None, (4, 4, 1)),
    ("cnn2d", (2, 4, 2), (2, 4, 2)),
    ("cnn3d", (2, 2, 2, 2), (2, 2, 2, 2)),
])
def test_every_architecture_trains(architecture, input_shape, expected_image):
    blocks = (ConvBlock(filters=4, batch_norm=True, dropout=0.1),
              ConvBlock(filters=4, pooling="avg", pool_size=1, padding="valid", kernel_size=1))
    spec = ModelSpec(architecture=architecture, units=(8,), input_shape=input_shape,
                     conv_blocks=blocks, dropout=0.2)
    model = build_model(spec, TrainingSpec(), input_dim=INPUT_DIM, num_classes=3, seed=1)
    reshape = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Reshape)]
    assert (reshape[0].target_shape if reshape else None) == expected_image
    assert model.output_shape == (None, 3)
    assert math.isfinite(_fit(model, num_classes=3))


def test_every_activation_trains():
    names = typing.get_args(model_spec.Activation)
    spec = ModelSpec(units=(4,) * len(names), layer_activations=names)
    model = build_model(spec, TrainingSpec(), input_dim=INPUT_DIM, num_classes=3)
    hidden = [layer for layer in model.layers if layer.name.startswith("dense_")]
    # Keras 3 names swish "silu" (one function, two names): compare the functions themselves
    assert [layer.activation for layer in hidden] == [tf.keras.activations.get(n) for n in names]
    assert math.isfinite(_fit(model, num_classes=3))


@pytest.mark.parametrize("name", typing.get_args(model_spec.Initializer))
def test_every_initializer_trains(name):
    spec = ModelSpec(units=(8,), kernel_initializer=name)
    model = build_model(spec, TrainingSpec(), input_dim=INPUT_DIM, num_classes=3, seed=2)
    init = model.get_layer("dense_0").kernel_initializer
    assert type(init).__name__.lower() == name.replace("_", "")
    assert math.isfinite(_fit(model, num_classes=3))


@pytest.mark.parametrize("name", typing.get_args(model_spec.Optimizer))
def test_every_optimizer_trains_with_the_overridden_learning_rate(name):
    model = build_model(SMALL, TrainingSpec(optimizer=name), input_dim=INPUT_DIM, num_classes=3,
                        learning_rate=0.004)
    assert type(model.optimizer).__name__.lower() == name
    assert float(model.optimizer.learning_rate) == pytest.approx(0.004)
    assert math.isfinite(_fit(model, num_classes=3))


def test_sgd_momentum_nesterov_and_legacy_optimizer():
    training = TrainingSpec(optimizer="sgd", momentum=0.9, nesterov=True)
    config = make_optimizer(training).get_config()
    assert (config["momentum"], config["nesterov"]) == (0.9, True)
    # Keras 2's legacy class; Keras 3 has one family of optimizers (profile current)
    legacy = tf.keras.optimizers.legacy.SGD if keras_major() < 3 else tf.keras.optimizers.SGD
    assert isinstance(make_optimizer(training, legacy=True), legacy)


def test_cosine_schedule_decays_to_zero_over_the_given_steps():
    training = TrainingSpec(optimizer="adam", learning_rate=0.01, lr_schedule="cosine")
    schedule = make_optimizer(training, total_steps=10).get_config()["learning_rate"]
    schedule = tf.keras.optimizers.schedules.deserialize(schedule)
    assert [round(float(schedule(s)), 6) for s in (0, 5, 10, 20)] == [0.01, 0.005, 0.0, 0.0]
    with pytest.raises(ConfigError, match="total_steps"):
        make_optimizer(training)
    model = build_model(SMALL, training, INPUT_DIM, 3, total_steps=4)
    assert math.isfinite(_fit(model, num_classes=3))


def test_cosine_schedule_and_reduce_lr_are_refused_together():
    with pytest.raises(ValueError, match="lr_schedule is 'cosine' and reduce_lr is enabled"):
        TrainingSpec(lr_schedule="cosine", reduce_lr=ReduceLRSpec(enabled=True))
    with pytest.raises(ValueError, match="time_limit_minutes is 0"):
        TrainingSpec(time_limit_minutes=0)


def test_wrap_optimizer_is_applied_before_compiling():
    seen = []

    def wrap(optimizer):
        seen.append(optimizer)
        return optimizer

    model = build_model(SMALL, TrainingSpec(), input_dim=INPUT_DIM, num_classes=3,
                        wrap_optimizer=wrap)
    assert seen == [model.optimizer]


@pytest.mark.parametrize("task, loss, classes, head", [
    ("classification", "auto", 4, (4, "softmax", "sparse_categorical_crossentropy")),
    ("classification", "auto", 2, (1, "sigmoid", "binary_crossentropy")),
    ("classification", "sparse_categorical_crossentropy", 2,
     (2, "softmax", "sparse_categorical_crossentropy")),
    ("classification", "categorical_crossentropy", 4, (4, "softmax", "categorical_crossentropy")),
    ("classification", "binary_crossentropy", 2, (1, "sigmoid", "binary_crossentropy")),
    ("regression", "auto", None, (1, "linear", "mse")),
    ("regression", "mse", None, (1, "linear", "mse")),
    ("regression", "mae", None, (1, "linear", "mae")),
    ("regression", "huber", None, (1, "linear", "huber")),
])
def test_every_loss_trains(task, loss, classes, head):
    spec, training = ModelSpec(task=task, units=(8,)), TrainingSpec(loss=loss)
    assert tuple(resolve_head(spec, training, classes)) == head
    model = build_model(spec, training, input_dim=INPUT_DIM, num_classes=classes)
    assert model.output_shape == (None, head[0])
    assert model.layers[-1].activation.__name__ == head[1]
    assert math.isfinite(_fit(model, num_classes=classes))


def test_categorical_crossentropy_on_sparse_labels_equals_sparse_crossentropy():
    x = np.random.default_rng(1).random((20, INPUT_DIM), dtype=np.float32)
    y = np.arange(20) % 4
    losses = [build_model(SMALL, TrainingSpec(loss=loss), INPUT_DIM, 4, seed=5)
              .evaluate(x, y, verbose=0)[0]
              for loss in ("categorical_crossentropy", "sparse_categorical_crossentropy")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize("task, classes, metrics, logged", [
    ("classification", 2, ("auto", "auc", "precision", "recall"),
     ["loss", "accuracy", "auc", "precision", "recall"]),
    ("classification", 5, ("accuracy", "auto"), ["loss", "accuracy"]),
    ("regression", None, ("auto", "mse", "rmse", "mape"), ["loss", "mae", "mse", "rmse", "mape"]),
    ("classification", 3, (), ["loss"]),
])
def test_metrics_are_logged(task, classes, metrics, logged):
    spec = ModelSpec(task=task, units=(8,))
    model = build_model(spec, TrainingSpec(metrics=metrics), INPUT_DIM, classes)
    x = np.zeros((8, INPUT_DIM), dtype=np.float32)
    y = np.arange(8) % (classes or 8)
    history = model.fit(x, y, epochs=1, verbose=0)
    assert sorted(history.history) == sorted(logged)  # Keras 3 sorts the keys; 2 does not


def test_per_layer_dropouts_and_l2():
    spec = ModelSpec(units=(8, 8), layer_dropouts=(0.25, 0.0), l2=1e-3)
    model = build_model(spec, TrainingSpec(), INPUT_DIM, 3)
    dropouts = [(lay.name, lay.rate) for lay in model.layers
                if isinstance(lay, tf.keras.layers.Dropout)]
    assert dropouts == [("dropout_0", 0.25)]
    assert len(model.losses) == 3  # one L2 term per kernel, output included


def test_seed_makes_builds_identical():
    spec = ModelSpec(architecture="cnn2d", units=(8,), conv_blocks=ONE_BLOCK)

    def weights(seed, global_seed):
        tf.keras.utils.set_random_seed(global_seed)  # must not matter when seed is given
        return build_model(spec, TrainingSpec(), INPUT_DIM, 3, seed=seed).get_weights()

    first, again, other = weights(3, 0), weights(3, 1), weights(4, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_callbacks_follow_the_training_spec():
    assert make_callbacks(TrainingSpec()) == []
    training = TrainingSpec(
        early_stopping=EarlyStoppingSpec(enabled=True, monitor="val_accuracy", patience=4),
        reduce_lr=ReduceLRSpec(enabled=True, factor=0.2, patience=1, min_lr=1e-5))
    stop, reduce = make_callbacks(training)
    assert isinstance(stop, tf.keras.callbacks.EarlyStopping)
    assert (stop.monitor, stop.patience, stop.restore_best_weights) == ("val_accuracy", 4, True)
    assert isinstance(reduce, tf.keras.callbacks.ReduceLROnPlateau)
    assert (reduce.factor, reduce.patience, reduce.min_lr) == (0.2, 1, 1e-5)


def test_config_loads_model_and_training_sections():
    cfg = load_config(conf_dir=None, overrides=[
        "model.architecture=cnn2d", "model.input_shape=[28, 28, 1]",
        "model.conv_blocks=[{filters: 8, pooling: avg}]", "training.optimizer=sgd",
        "training.momentum=0.9", "training.early_stopping.enabled=true"])
    assert cfg.model.conv_blocks == (ConvBlock(filters=8, pooling="avg"),)
    assert cfg.model.input_shape == (28, 28, 1)
    assert (cfg.training.optimizer, cfg.training.momentum) == ("sgd", 0.9)
    assert cfg.training.early_stopping.enabled is True


@pytest.mark.parametrize("override, typo, suggestion", [
    ("training.optimizer=adamm", "adamm", "adam"),
    ("model.activation=rleu", "rleu", "relu"),
    ("model.kernel_initializer=he_normall", "he_normall", "he_normal"),
    ("training.loss=hubr", "hubr", "huber"),
    ("model.conv_blocks=[{padding: vaild}]", "vaild", "valid"),
])
def test_typo_in_a_name_is_a_config_error_with_a_suggestion(override, typo, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'") as info:
        load_config(conf_dir=None, overrides=[override])
    assert f"is '{typo}', not one of:" in str(info.value)


@pytest.mark.parametrize("overrides, message", [
    (["model.dropout=1.5"], "dropout is 1.5"),
    (["training.nesterov=true"], "set optimizer: sgd"),
    (["training.momentum=0.9"], "does not use it"),
    (["model.architecture=cnn2d", "model.input_shape=[28, 28]"], "2 spatial sizes plus"),
    (["model.units=[8, 4]", "model.layer_activations=[relu]"], "give one per layer"),
    (["training.batch_size=0"], "batch_size is 0"),
    (["model.num_classes=1"], "use at least 2"),
])
def test_invalid_value_is_a_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(conf_dir=None, overrides=overrides)


@pytest.mark.parametrize("model, training, classes, message", [
    (ModelSpec(architecture="cnn2d", input_shape=(4, 5, 1)), TrainingSpec(), 3,
     r"model.input_shape is \[4, 5, 1\] \(20 values\) but the data has 16 features"),
    (ModelSpec(architecture="cnn2d", conv_blocks=(ConvBlock(kernel_size=5, padding="valid"),)),
     TrainingSpec(), 3, r"model.conv_blocks\[0\].kernel_size is 5"),
    (ModelSpec(architecture="cnn2d", conv_blocks=(ConvBlock(),) * 3), TrainingSpec(), 3,
     r"model.conv_blocks\[2\].pool_size is 2 but the feature map is 1 wide"),
    (ModelSpec(architecture="cnn3d"), TrainingSpec(), 3, "not a cube"),
    (SMALL, TrainingSpec(loss="binary_crossentropy"), 4, "there are 4 classes"),
    (SMALL, TrainingSpec(loss="mse"), 4, "model.task is classification"),
    (ModelSpec(task="regression"), TrainingSpec(loss="categorical_crossentropy"), None,
     "model.task is regression"),
    (SMALL, TrainingSpec(metrics=("auc",)), 4, "needs 2 classes"),
    (ModelSpec(task="regression"), TrainingSpec(metrics=("accuracy",)), None, "use mae"),
    (SMALL, TrainingSpec(), None, "model.num_classes is null"),
    (ModelSpec(num_classes=3), TrainingSpec(), 5, "set model.num_classes: 5 or null"),
])
def test_build_time_mismatch_is_a_one_line_config_error(model, training, classes, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_model(model, training, input_dim=INPUT_DIM, num_classes=classes)
    assert "\n" not in str(info.value)


def test_model_num_classes_may_exceed_the_dataset():
    model = build_model(ModelSpec(units=(8,), num_classes=10), TrainingSpec(), INPUT_DIM, 7)
    assert model.output_shape == (None, 10)


def test_importing_models_does_not_import_tensorflow():
    code = "import sys, sparkdl_tune.executor.models; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
