"""Build a compiled ``tf.keras`` model from a :class:`ModelSpec` and a :class:`TrainingSpec`.

The model always takes a flat float vector of ``input_dim`` features (what the Parquet data
holds); convolutional architectures reshape it into an image first. Labels are sparse: integer
class ids for classification, one float for regression. The head, loss, metrics and optimizer
come from :mod:`.compilation`, which the user's builder (:mod:`.builder`) and a pretrained
trunk (:mod:`.backbone`) share.

TensorFlow is imported inside the functions, so importing this module stays cheap. Facts that
depend on the data (number of features and classes) are checked here and reported as
:class:`~sparkdl_tune.errors.ConfigError` naming the key, the value and the fix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any, Optional

from ..config.model_spec import ModelSpec, TrainingSpec
from ..errors import ConfigError
from .compilation import (
    Head,
    compile_model,
    custom_objects,
    make_optimizer,
    resolve_head,
    resolve_metrics,
    resolve_num_classes,
)


def build_model(
    model: ModelSpec,
    training: TrainingSpec,
    input_dim: int,
    num_classes: Optional[int] = None,
    learning_rate: Optional[float] = None,
    *,
    seed: Optional[int] = None,
    wrap_optimizer: Optional[Callable[[Any], Any]] = None,
    legacy_optimizer: bool = False,
    total_steps: Optional[int] = None,
):
    """Build and compile the network described by ``model`` and ``training``.

    Args:
        model: Architecture and layer options.
        training: Optimiser, loss and metrics.
        input_dim: Number of features in each (flat) input row.
        num_classes: Number of classes in the dataset; used when ``model.num_classes`` is null.
        learning_rate: Overrides ``training.learning_rate`` (e.g. scaled by the worker count).
        seed: Seeds every initializer and dropout layer, so two builds are identical.
        wrap_optimizer: Called with the optimizer before compiling, e.g.
            ``hvd.DistributedOptimizer``.
        legacy_optimizer: Use Keras 2's ``tf.keras.optimizers.legacy`` classes (for older
            Horovod); Keras 3 has no others (:func:`sparkdl_tune.keras_compat.optimizers`).
        total_steps: Optimizer steps of the whole fit, for ``training.lr_schedule: cosine``.

    Returns:
        A compiled ``tf.keras.Model``.

    Raises:
        ConfigError: The spec does not fit the data (classes, features, image shape).
    """
    import tensorflow as tf

    if input_dim < 1:
        raise ConfigError(f"input_dim is {input_dim}; the data needs at least one feature column")
    classes = resolve_num_classes(model, num_classes)
    head = resolve_head(model, training, classes)
    metrics = resolve_metrics(model, training, head)
    seeds = itertools.count(seed) if seed is not None else itertools.repeat(None)
    if model.builder is not None:  # the user's own network (model.builder)
        from .builder import build_user_model

        optimizer = make_optimizer(training, learning_rate, legacy=legacy_optimizer,
                                   total_steps=total_steps)
        return build_user_model(model, training, input_dim, classes, head, metrics,
                                wrap_optimizer(optimizer) if wrap_optimizer else optimizer,
                                wrap_optimizer, seed)

    inputs = tf.keras.Input(shape=(input_dim,), name="features", dtype="float32")
    x = inputs
    if model.backbone is not None:  # a pretrained network under the head
        from .backbone import attach

        x = attach(tf, model, inputs, input_dim, seed)
    elif model.conv_rank:
        x = _conv_stack(tf, model, x, resolve_input_shape(model, input_dim), seeds)
    outputs = dense_head(tf, model, x, head, seeds)
    name = "backbone" if model.backbone is not None else model.architecture
    net = tf.keras.Model(inputs, outputs, name=f"sparkdl_tune_{name}")

    compile_model(tf, net, training, head, metrics, learning_rate, legacy=legacy_optimizer,
                  total_steps=total_steps, wrap_optimizer=wrap_optimizer)
    return net


def dense_head(tf, model: ModelSpec, x, head: Head, seeds: Iterator):
    """``model.dense_units`` hidden layers (activation, dropout) and the task's output layer."""
    activations = model.layer_activations or (model.activation,) * len(model.dense_units)
    dropouts = model.layer_dropouts or (model.dropout,) * len(model.dense_units)
    for i, (width, act, rate) in enumerate(zip(model.dense_units, activations, dropouts)):
        x = tf.keras.layers.Dense(width, activation=act, name=f"dense_{i}",
                                  **_kernel_args(tf, model, seeds))(x)
        if rate > 0:
            x = tf.keras.layers.Dropout(rate, seed=next(seeds), name=f"dropout_{i}")(x)
    return tf.keras.layers.Dense(head.units, activation=head.activation, name="output",
                                 **_kernel_args(tf, model, seeds))(x)



def make_callbacks(training: TrainingSpec) -> list:
    """Keras callbacks for early stopping and reduce-LR-on-plateau, when enabled.

    The monitored quantity must be one ``fit`` logs: ``val_*`` needs validation data.

    Args:
        training: Supplies ``early_stopping`` and ``reduce_lr``.

    Returns:
        Zero, one or two callbacks, early stopping first.
    """
    import tensorflow as tf

    callbacks = []
    es = training.early_stopping
    if es.enabled:
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights))
    rl = training.reduce_lr
    if rl.enabled:
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau(
            monitor=rl.monitor, factor=rl.factor, patience=rl.patience, min_lr=rl.min_lr))
    return callbacks


def rebuild(result):
    """The trained Keras model of a :class:`~sparkdl_tune.spec.result.TrainResult`, rebuilt
    on the driver (uncompiled; for predict and logging)."""
    import tensorflow as tf

    model = tf.keras.models.model_from_json(result.model_json, custom_objects=custom_objects())
    model.set_weights(result.weights)
    return model



def resolve_input_shape(model: ModelSpec, input_dim: int) -> tuple[int, ...]:
    """The image shape a CNN reshapes ``input_dim`` flat features into.

    ``model.input_shape`` when set; else ``[input_dim, 1]`` (cnn1d), a square (cnn2d) or a
    cube (cnn3d) with one channel.

    Raises:
        ConfigError: The shape does not hold exactly ``input_dim`` values, or no square/cube fits.
    """
    rank = model.conv_rank
    if model.input_shape is not None:
        shape = tuple(model.input_shape)
        if math.prod(shape) != input_dim:
            raise ConfigError(
                f"model.input_shape is {list(shape)} ({math.prod(shape)} values) but the data "
                f"has {input_dim} features; use a shape whose product is {input_dim}")
    else:
        side = round(input_dim ** (1.0 / rank))
        if side ** rank != input_dim:
            raise ConfigError(
                f"model.input_shape is null and {input_dim} features are not a "
                f"{['', 'line', 'square', 'cube'][rank]}; set model.input_shape with "
                f"{rank} sizes plus channels whose product is {input_dim}")
        shape = (side,) * rank + (1,)
    _check_spatial(model, shape)
    return shape


def _check_spatial(model: ModelSpec, shape: tuple[int, ...]) -> None:
    """Follow the feature-map size through the blocks; Keras's own error is a traceback."""
    sizes = list(shape[:-1])
    for i, block in enumerate(model.conv_blocks):
        key = f"model.conv_blocks[{i}]"
        smallest = min(sizes)
        if block.padding == "valid" and smallest < block.kernel_size:
            raise ConfigError(
                f"{key}.kernel_size is {block.kernel_size} but the feature map is {smallest} "
                f"wide there (input_shape {list(shape)}); use padding: same, a smaller "
                "kernel_size or fewer conv_blocks")
        if block.padding == "valid":
            sizes = [(n - block.kernel_size) // block.strides + 1 for n in sizes]
        else:
            sizes = [math.ceil(n / block.strides) for n in sizes]
        if block.pooling != "none":
            smallest = min(sizes)
            if smallest < block.pool_size:
                raise ConfigError(
                    f"{key}.pool_size is {block.pool_size} but the feature map is {smallest} "
                    f"wide there (input_shape {list(shape)}); use pooling: none, a smaller "
                    "pool_size or fewer conv_blocks")
            sizes = [n // block.pool_size for n in sizes]


def _conv_stack(tf, model: ModelSpec, x, shape: tuple[int, ...], seeds: Iterator):
    rank = model.conv_rank
    conv = getattr(tf.keras.layers, f"Conv{rank}D")
    pools = {"max": getattr(tf.keras.layers, f"MaxPooling{rank}D"),
             "avg": getattr(tf.keras.layers, f"AveragePooling{rank}D")}
    x = tf.keras.layers.Reshape(shape, name="to_image")(x)
    for i, block in enumerate(model.conv_blocks):
        activation = block.activation or model.activation
        # With batch norm the activation goes after it, and the norm's shift replaces the bias.
        x = conv(block.filters, block.kernel_size, strides=block.strides, padding=block.padding,
                 activation=None if block.batch_norm else activation,
                 use_bias=not block.batch_norm, name=f"conv_{i}",
                 **_kernel_args(tf, model, seeds))(x)
        if block.batch_norm:
            x = tf.keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
            x = tf.keras.layers.Activation(activation, name=f"conv_activation_{i}")(x)
        if block.pooling != "none":
            x = pools[block.pooling](block.pool_size, name=f"pool_{i}")(x)
        if block.dropout > 0:
            x = tf.keras.layers.Dropout(block.dropout, seed=next(seeds),
                                        name=f"conv_dropout_{i}")(x)
    return tf.keras.layers.Flatten(name="flatten")(x)


def _kernel_args(tf, model: ModelSpec, seeds: Iterator) -> dict[str, Any]:
    """A fresh initializer per layer (a shared seeded one would repeat its values)."""
    init = tf.keras.initializers.get(model.kernel_initializer)
    seed = next(seeds)
    config = init.get_config()
    if seed is not None and "seed" in config:
        init = type(init).from_config({**config, "seed": seed})
    regularizer = tf.keras.regularizers.L2(model.l2) if model.l2 > 0 else None
    return {"kernel_initializer": init, "kernel_regularizer": regularizer}



