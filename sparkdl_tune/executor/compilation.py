"""What a network is compiled with: the task's head (output units, activation, loss), its
metrics, the optimizer, and the custom objects that load a saved model with its loss again.

A leaf of the executor: :mod:`.models` (the package's networks), :mod:`.builder` (the user's
own), :mod:`.backbone` and :mod:`.unfreezing` all compile with these, and it imports none of
them. TensorFlow is imported inside the functions. Facts that depend on the data (number of
classes) are checked here and reported as :class:`~sparkdl_tune.errors.ConfigError` naming
the key, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional

from ..config.model_spec import (
    CLASSIFICATION_LOSSES,
    CLASSIFICATION_METRICS,
    REGRESSION_LOSSES,
    REGRESSION_METRICS,
    ModelSpec,
    TrainingSpec,
)
from ..errors import ConfigError

_OPTIMIZER_CLASSES = {
    "sgd": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta", "rmsprop": "RMSprop",
    "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam",
}


_BINARY_METRICS = ("auc", "precision", "recall")


class Head(NamedTuple):
    """The output layer and loss the task calls for (see :func:`resolve_head`)."""

    units: int
    activation: str
    loss: str


def make_optimizer(training: TrainingSpec, learning_rate: Optional[float] = None, *,
                   legacy: bool = False, total_steps: Optional[int] = None):
    """Create the Keras optimizer named by ``training.optimizer``.

    Args:
        training: Supplies the optimizer name, learning rate, momentum and nesterov flag.
        learning_rate: Overrides ``training.learning_rate``.
        legacy: Use Keras 2's ``tf.keras.optimizers.legacy`` class of the same name (Keras 3
            has one family: the plain class).
        total_steps: Steps the cosine schedule decays over; required for
            ``lr_schedule: cosine``.

    Returns:
        A fresh ``tf.keras`` optimizer.
    """
    import tensorflow as tf

    rate = training.rate if learning_rate is None else learning_rate
    if not rate > 0:
        raise ConfigError(f"learning rate is {rate}; set training.learning_rate > 0, e.g. 0.001")
    kwargs: dict[str, Any] = {"learning_rate": rate}
    if training.lr_schedule == "cosine":
        if not total_steps or total_steps < 1:
            raise ConfigError("lr_schedule cosine needs the number of training steps; "
                              "pass total_steps (epochs x steps per epoch)")
        kwargs["learning_rate"] = tf.keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=rate, decay_steps=total_steps)
    if training.optimizer == "sgd":
        kwargs.update(momentum=training.momentum, nesterov=training.nesterov)
    elif training.optimizer == "rmsprop":
        kwargs["momentum"] = training.momentum
    from ..keras_compat import optimizers

    return getattr(optimizers(tf, legacy), _OPTIMIZER_CLASSES[training.optimizer])(**kwargs)


def compile_model(tf, net, training: TrainingSpec, head: Head, metrics: Sequence[str],
                  learning_rate: Optional[float] = None, *, legacy: bool = False,
                  total_steps: Optional[int] = None,
                  wrap_optimizer: Optional[Callable[[Any], Any]] = None) -> None:
    """Compile ``net`` with ``training``'s optimizer (wrapped, e.g. by Horovod), the head's loss
    and ``metrics``: the first build and a recompile after unfreezing do the same."""
    optimizer = make_optimizer(training, learning_rate, legacy=legacy, total_steps=total_steps)
    if wrap_optimizer is not None:
        optimizer = wrap_optimizer(optimizer)
    net.compile(optimizer=optimizer, loss=keras_loss(tf, head.loss),
                metrics=[keras_metric(tf, m) for m in metrics])


def custom_objects() -> dict[str, Callable]:
    """Objects to pass as ``custom_objects`` when loading a saved model with its loss."""
    return {"categorical_crossentropy_from_sparse": categorical_crossentropy_from_sparse,
            "sparkdl_tune>categorical_crossentropy_from_sparse":
                categorical_crossentropy_from_sparse}


def categorical_crossentropy_from_sparse(y_true, y_pred):
    """Categorical cross-entropy on sparse integer labels (one-hot encoded here)."""
    import tensorflow as tf

    depth = tf.shape(y_pred)[-1]
    one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), depth)
    return tf.keras.losses.categorical_crossentropy(one_hot, y_pred)


def resolve_num_classes(model: ModelSpec, num_classes: Optional[int]) -> Optional[int]:
    """The number of output classes: ``model.num_classes``, else the dataset's; None if regression.

    Raises:
        ConfigError: Neither is known, there are fewer than 2, or the dataset has more
            classes than ``model.num_classes``.
    """
    if model.task == "regression":
        return None
    if model.num_classes is not None:
        if num_classes is not None and num_classes > model.num_classes:
            raise ConfigError(
                f"model.num_classes is {model.num_classes} but the dataset has {num_classes} "
                f"classes; set model.num_classes: {num_classes} or null")
        return model.num_classes
    if num_classes is None:
        raise ConfigError("model.num_classes is null and the dataset did not give a number of "
                          "classes; set model.num_classes, e.g. 10")
    if num_classes < 2:
        raise ConfigError(f"the dataset has {num_classes} class; classification needs at least "
                          "2 (check the label column) or set model.task: regression")
    return num_classes


def resolve_head(model: ModelSpec, training: TrainingSpec, num_classes: Optional[int]) -> Head:
    """Pick the output layer and the concrete loss name (``auto`` resolved).

    Regression: 1 linear unit, ``mse`` by default. Two classes with binary cross-entropy
    (the ``auto`` choice): 1 sigmoid unit. Otherwise one softmax unit per class.

    Raises:
        ConfigError: The loss does not fit the task or the number of classes.
    """
    loss = training.loss
    if model.task == "regression":
        if loss in CLASSIFICATION_LOSSES:
            raise ConfigError(f"training.loss is {loss!r} but model.task is regression; use "
                              f"{', '.join(REGRESSION_LOSSES)} or auto")
        return Head(1, "linear", "mse" if loss == "auto" else loss)
    if num_classes is None:
        raise ConfigError("model.num_classes is null; set it, e.g. 10, for classification")
    if loss in REGRESSION_LOSSES:
        raise ConfigError(f"training.loss is {loss!r} but model.task is classification; use "
                          f"{', '.join(CLASSIFICATION_LOSSES)} or auto")
    if loss == "auto":
        loss = "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
    if loss == "binary_crossentropy":
        if num_classes != 2:
            raise ConfigError(f"training.loss is 'binary_crossentropy' but there are "
                              f"{num_classes} classes; use sparse_categorical_crossentropy "
                              "or auto")
        return Head(1, "sigmoid", loss)
    return Head(num_classes, "softmax", loss)


def metric_names(model: ModelSpec, training: TrainingSpec) -> tuple[str, ...]:
    """``training.metrics`` with ``auto`` expanded for the task, duplicates removed."""
    auto = "accuracy" if model.task == "classification" else "mae"
    return tuple(dict.fromkeys(auto if m == "auto" else m for m in training.metrics))


def logged_metrics(model: ModelSpec, training: TrainingSpec) -> tuple[str, ...]:
    """What a training's history holds: the loss and each metric, on train and validation."""
    names = ("loss", *metric_names(model, training))
    return (*names, *(f"val_{n}" for n in names))


def resolve_metrics(model: ModelSpec, training: TrainingSpec, head: Head) -> tuple[str, ...]:
    """Metric names with ``auto`` expanded and duplicates removed, checked against the task.

    Raises:
        ConfigError: A metric does not fit the task (or needs binary classification).
    """
    names = metric_names(model, training)
    wrong = REGRESSION_METRICS if model.task == "classification" else CLASSIFICATION_METRICS
    for name in names:
        if name in wrong:
            valid = CLASSIFICATION_METRICS if wrong is REGRESSION_METRICS else REGRESSION_METRICS
            raise ConfigError(f"training.metrics has {name!r} but model.task is {model.task}; "
                              f"use {', '.join(valid)} or auto")
        if name in _BINARY_METRICS and head.units != 1:
            raise ConfigError(f"training.metrics has {name!r}, which needs 2 classes with a "
                              f"sigmoid output, but there are {head.units}; use accuracy")
    return names


def keras_loss(tf, name: str):
    """The loss to compile with: a name Keras knows, or the package's own function."""
    if name == "categorical_crossentropy":
        return tf.keras.utils.register_keras_serializable("sparkdl_tune")(
            categorical_crossentropy_from_sparse)
    return name


def keras_metric(tf, name: str):
    """The metric to compile with: a name Keras knows, or a metric object named ``name``."""
    objects = {"auc": tf.keras.metrics.AUC, "precision": tf.keras.metrics.Precision,
               "recall": tf.keras.metrics.Recall, "rmse": tf.keras.metrics.RootMeanSquaredError}
    return objects[name](name=name) if name in objects else name

