"""Builders for tests/test_builder.py: one that fails for some of its params (a top-level module,
so the driver ships the file itself to the executors)."""

from __future__ import annotations


def picky(ctx):
    """width 8: a good model; width 16: raises; width 4: the wrong output shape."""
    import tensorflow as tf

    width = ctx.params["width"]
    if width == 16:
        raise ValueError(f"width {width} is not supported")
    inputs = ctx.inputs()
    x = tf.keras.layers.Dense(width, activation="relu")(inputs)
    out = ctx.head(x) if width == 8 else tf.keras.layers.Dense(5)(x)
    return tf.keras.Model(inputs, out)
