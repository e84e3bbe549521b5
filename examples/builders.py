"""Your own Keras model for ``model.builder``: two examples to copy.

A builder is a function of one :class:`sparkdl_tune.executor.builder.BuildContext` that returns
an uncompiled ``tf.keras.Model`` from the flat features (``ctx.inputs()``) to the task's head
(``ctx.head(x)``); the package compiles it with ``training``'s optimizer, loss and metrics.
Its own hyper-parameters come in ``ctx.params`` and are searchable as ``model.params.<name>``::

    model:
      builder: examples.builders:residual_mlp
      params: {width: 128, blocks: 2, dropout: 0.1}
    search:
      space:
        model.params.width: {choice: [64, 128, 256]}
        model.params.blocks: {int: [1, 3]}

Executors import this module like the driver does: the package ships the module's top-level
package to them (``SparkContext.addPyFile``), so running from the repository root is enough.
Custom layers must be registered (``tf.keras.utils.register_keras_serializable``) in the
builder's module, so the logged model loads wherever the module imports.
"""

from __future__ import annotations


def residual_mlp(ctx):
    """Dense residual blocks: ``blocks`` x (Dense -> Dropout -> Dense, added to the input).

    Params: ``width`` (units of every block, default 128), ``blocks`` (default 2),
    ``dropout`` (rate inside each block, default 0.0).
    """
    import tensorflow as tf

    width = int(ctx.params.get("width", 128))
    blocks = int(ctx.params.get("blocks", 2))
    dropout = float(ctx.params.get("dropout", 0.0))
    layers = tf.keras.layers
    inputs = ctx.inputs()
    x = layers.Dense(width, activation="relu", name="stem")(inputs)
    for i in range(blocks):
        y = layers.Dense(width, activation="relu", name=f"block_{i}_a")(x)
        if dropout > 0:
            y = layers.Dropout(dropout, seed=ctx.seed, name=f"block_{i}_dropout")(y)
        y = layers.Dense(width, name=f"block_{i}_b")(y)
        x = layers.Add(name=f"block_{i}_add")([x, y])
        x = layers.Activation("relu", name=f"block_{i}_out")(x)
    return tf.keras.Model(inputs, ctx.head(x), name="residual_mlp")


def tiny_cnn(ctx):
    """A small CNN for 28x28 grey images (Fashion-MNIST): ``blocks`` x (Conv -> Pool).

    Params: ``width`` (filters of the first block, doubled per block, default 16),
    ``blocks`` (default 2), ``side`` (image side, default: the square root of the features).
    """
    import math

    import tensorflow as tf

    width = int(ctx.params.get("width", 16))
    blocks = int(ctx.params.get("blocks", 2))
    side = int(ctx.params.get("side", math.isqrt(ctx.input_dim)))
    layers = tf.keras.layers
    inputs = ctx.inputs()
    x = layers.Reshape((side, side, ctx.input_dim // (side * side)), name="to_image")(inputs)
    for i in range(blocks):
        x = layers.Conv2D(width * 2**i, 3, padding="same", activation="relu",
                          name=f"conv_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return tf.keras.Model(inputs, ctx.head(x), name="tiny_cnn")

