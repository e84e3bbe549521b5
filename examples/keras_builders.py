"""A builder written the way Keras 3 code is written: ``import keras`` at the top, a custom
layer registered with ``keras.saving.register_keras_serializable`` at import.

Runs on both profiles: under profile current ``tf.keras`` is Keras 3, the ``keras`` imported
here; under classic ``keras`` is Keras 2.15, which is what ``tf.keras`` is there. The layer is
registered when this module imports, so the trained model rebuilds on the driver and loads from
MLflow wherever the module imports (``examples/fashion_keras.yaml`` tunes it).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="examples")
class Scale(keras.layers.Layer):
    """Features times one learned scalar (starts at 1)."""

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(), initializer="ones")

    def call(self, x):
        return x * self.factor


def keras_mlp(ctx):
    """``Scale`` then ``blocks`` dense layers of ``width`` units, then the task's head.

    Params: ``width`` (default 128), ``blocks`` (default 2).
    """
    width = int(ctx.params.get("width", 128))
    blocks = int(ctx.params.get("blocks", 2))
    inputs = ctx.inputs()
    x = Scale(name="scale")(inputs)
    for i in range(blocks):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
    return keras.Model(inputs, ctx.head(x), name="keras_mlp")
