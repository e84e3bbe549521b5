"""Keras 2 or Keras 3: the one version check, and the Keras calls whose form differs.

Profile ``classic`` runs TensorFlow 2.15, whose ``tf.keras`` is Keras 2; profile ``current``
runs TensorFlow 2.21, whose ``tf.keras`` is Keras 3 (the ``keras`` package, so a user's
``import keras`` builder is the same library). Code that needs a different call under Keras 3
asks :func:`keras_major` rather than reading versions itself, so the Keras 2 form stays exactly
as it was and the Keras 3 form sits beside it in one visible branch.

A leaf both sides import: nothing of the package's; TensorFlow only inside the functions.
"""

from __future__ import annotations

import contextlib
import functools


@functools.cache
def keras_major() -> int:
    """The major version of the Keras that ``tf.keras`` is here: 2 (classic) or 3 (current).

    ``tf.keras`` decides, not the ``keras`` package: with ``TF_USE_LEGACY_KERAS=1`` TensorFlow
    2.16+ serves ``tf-keras`` (Keras 2) as ``tf.keras`` while ``import keras`` is Keras 3.
    """
    import tensorflow as tf

    # Keras 3 has keras.version(); tf-keras has __version__; TF 2.15's tf.keras has neither
    version = getattr(tf.keras, "version", None)
    version = version() if callable(version) else getattr(tf.keras, "__version__", "2")
    return int(str(version).split(".", 1)[0])


def optimizers(tf, legacy: bool = False):
    """The module holding the optimizer classes (``Adam``, ``SGD``...).

    Keras 2's ``tf.keras.optimizers.legacy`` when ``legacy`` (older Horovod wants those); Keras 3
    has one family of optimizers (its ``legacy`` namespace raises on use), so ``legacy`` asks
    for nothing there.
    """
    if legacy and keras_major() < 3:
        return tf.keras.optimizers.legacy
    return tf.keras.optimizers


def retrace_train_step(model, scope=None) -> None:
    """After ``model.compile(...)`` inside ``fit`` (a callback changed what trains, or the
    optimizer): retrace the train step, so the next batch trains the new trainable weights
    with the new optimizer.

    Keras 3's ``compile`` drops the train function, and its fresh optimizer would create its
    slots inside the traced step; they are built here, eagerly, first, inside ``scope()`` (a
    distribution strategy's scope, where the model was built) when given.
    """
    if keras_major() >= 3:
        with scope() if scope is not None else contextlib.nullcontext():
            model.optimizer.build(model.trainable_variables)
    model.make_train_function(force=True)
