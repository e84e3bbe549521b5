"""Executor side of ``model.backbone``: a pretrained network under the head.

:func:`attach` loads the backbone (a Keras file, an MLflow model the driver saved as a file and
shipped, or a Keras Applications architecture with weights from a local file; nothing is
downloaded), cuts off its old head, fits the flat features to its input (reshaped into an image,
resized in the graph when smaller than the architecture allows, grey repeated to three
channels, scaled the way the architecture was trained), and freezes all but the top
``trainable_layers`` blocks. The nested model is named ``backbone``, so
:mod:`sparkdl_tune.executor.unfreezing` finds it to unfreeze more blocks during ``fit``.

Blocks are counted from the top over layers with weights: a plain network's layers one by one,
the Applications' named blocks (``block_16_*``, ``block7a_*``, ``conv5_block3_*``) as one.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import tempfile
from typing import Optional

from ..config.model_spec import APPLICATIONS, BackboneSpec, ModelSpec
from ..errors import ConfigError

NAME = "backbone"
#: How each architecture's weights expect pixels, from features in [0, 1]: (scale, offset),
#: then ImageNet's BGR means subtracted for ``resnet50`` (caffe style).
_PIXELS = {"mobilenet_v2": (2.0, -1.0), "efficientnet_b0": (255.0, 0.0),
           "resnet50": (255.0, 0.0)}
_CAFFE_MEANS = (103.939, 116.779, 123.68)
_BLOCK = re.compile(r"^(block_?\d+[a-z]?|conv\d+_block\d+)_")
_SUFFIX = re.compile(r"_(bn|BN|conv|relu|act)$")


def shipped_name(source: str) -> str:
    """The file name an MLflow backbone travels under (the driver writes it, executors read)."""
    return f"backbone-{hashlib.sha256(source.encode()).hexdigest()[:16]}.keras"


def shipped_dir() -> str:
    """Where the driver keeps backbones it saved from MLflow (read directly in local mode)."""
    return os.path.join(tempfile.gettempdir(), "sparkdl-tune-backbones")


def local_path(source: str) -> str:
    """A backbone file or weights file as a path here: as given when it exists, else the
    copy Spark shipped (``SparkContext.addFile``) to this executor."""
    name = shipped_name(source) if source.startswith(("runs:/", "models:/")) else None
    candidate = os.path.join(shipped_dir(), name) if name else source
    if os.path.exists(candidate):
        return candidate
    try:
        from pyspark import SparkFiles

        shipped = SparkFiles.get(name or os.path.basename(source.rstrip("/")))
    except Exception:  # not in a Spark task
        shipped = None
    if shipped and os.path.exists(shipped):
        return shipped
    raise ConfigError(f"model.backbone: {source} is not on this machine ({candidate}); give a "
                      "path every executor can read, or run through sparkdl_tune so the "
                      "driver ships it")


def load_trunk(tf, spec: BackboneSpec, image: Optional[tuple[int, ...]],
               seed: Optional[int] = None):
    """The backbone without its old head, as a model named ``backbone``.

    ``image`` is the (height, width, channels) the flat features form, when they are an image;
    ``seed`` seeds a ``scratch`` backbone's fresh weights.
    """
    app = spec.application
    if app is not None:
        if image is None or len(image) != 3:
            raise ConfigError(f"model.backbone {app} needs images; set model.input_shape to "
                              "[height, width, channels] of the flat features")
        cls_name, smallest = APPLICATIONS[app]
        size = (max(smallest, image[0]), max(smallest, image[1]), 3)
        net = getattr(tf.keras.applications, cls_name)(include_top=False, weights=None,
                                                       input_shape=size, pooling="avg")
        if spec.mode != "scratch":
            net.load_weights(local_path(spec.weights))
        # .output, not .outputs: Keras 3 keeps a list of one as a list when the model is called
        return tf.keras.Model(net.inputs, net.output, name=NAME)
    from .compilation import custom_objects

    base = tf.keras.models.load_model(local_path(spec.source), compile=False,
                                      custom_objects=custom_objects())
    if spec.output_layer:
        try:
            out = base.get_layer(spec.output_layer).output
        except ValueError:
            names = [layer.name for layer in base.layers]
            raise ConfigError(f"model.backbone.output_layer {spec.output_layer!r} is not a "
                              f"layer of {spec.source}; pick one of {names}") from None
    else:
        out = base.layers[-1].input
    trunk = tf.keras.Model(base.inputs, out, name=NAME)
    if spec.mode == "scratch":  # the same network, fresh weights from its initializers
        trunk = tf.keras.models.clone_model(trunk, clone_function=_reseeded(seed))
        trunk = tf.keras.Model(trunk.inputs, trunk.output, name=NAME)
    return trunk


def _reseeded(seed: Optional[int]):
    """A ``clone_model`` function: each layer anew, its initializers' seeds replaced (a
    seeded initializer would otherwise draw the very weights it drew before)."""
    seeds = itertools.count(seed) if seed is not None else itertools.repeat(None)

    def clone(layer):
        config = layer.get_config()
        for key, value in config.items():
            inner = value.get("config") if isinstance(value, dict) else None
            if key.endswith("_initializer") and isinstance(inner, dict) and "seed" in inner:
                inner["seed"] = next(seeds)
        return layer.__class__.from_config(config)

    return clone


def attach(tf, model: ModelSpec, inputs, input_dim: int, seed: Optional[int] = None):
    """The backbone applied to the flat ``inputs``; its output (a vector) feeds the head."""
    spec = model.backbone
    image = _image_shape(model, input_dim)
    trunk = load_trunk(tf, spec, image, seed)
    want = tuple(trunk.input_shape[1:])
    x = _fit_input(tf, spec, inputs, input_dim, image, want)
    set_unfrozen(trunk, len(blocks(trunk)) if spec.mode == "scratch" else spec.trainable_layers)
    # pretrained: batch norm keeps its learned statistics, also once its block is unfrozen
    y = trunk(x) if spec.mode == "scratch" else trunk(x, training=False)
    if len(y.shape) > 2:
        pool = tf.keras.layers.GlobalAveragePooling2D if len(y.shape) == 4 else \
            tf.keras.layers.Flatten
        y = pool(name="backbone_pool")(y)
    return y


def blocks(trunk) -> list[list]:
    """The trunk's blocks of layers with weights, top first."""
    groups: list[list] = []
    last_key = None
    for layer in trunk.layers:
        if not layer.weights:
            continue
        key = _block_key(layer.name)
        if groups and key == last_key:
            groups[-1].append(layer)
        else:
            groups.append([layer])
        last_key = key
    return groups[::-1]


def set_unfrozen(trunk, n: int) -> int:
    """Make the top ``n`` blocks trainable and the rest frozen; returns the blocks trainable."""
    groups = blocks(trunk)
    n = min(n, len(groups))
    trunk.trainable = True
    for layer in trunk.layers:
        layer.trainable = False
    for group in groups[:n]:
        for layer in group:
            layer.trainable = True
    return n


def find_trunk(net):
    """The nested ``backbone`` model of a network :func:`attach` built."""
    return net.get_layer(NAME)


def _block_key(name: str) -> str:
    match = _BLOCK.match(name)
    return match.group(1) if match else _SUFFIX.sub("", name)


def _image_shape(model: ModelSpec, input_dim: int) -> Optional[tuple[int, ...]]:
    if model.input_shape is not None:
        shape = tuple(model.input_shape)
        if len(shape) != 3 or math.prod(shape) != input_dim:
            raise ConfigError(f"model.input_shape is {list(shape)} but a backbone needs "
                              f"[height, width, channels] holding the {input_dim} features; "
                              "e.g. [28, 28, 1] for 784")
        return shape
    side = math.isqrt(input_dim)
    return (side, side, 1) if side * side == input_dim else None


def _fit_input(tf, spec: BackboneSpec, inputs, input_dim: int, image, want):
    """Reshape, resize, repeat channels and scale the flat features for the trunk's input."""
    layers = tf.keras.layers
    if want == (input_dim,):
        return inputs
    if len(want) != 3 or image is None:
        raise ConfigError(f"model.backbone {spec.source} takes input {list(want)} but the data "
                          f"has {input_dim} flat features; set model.input_shape to the image "
                          "the features form, or pick a backbone trained on these features")
    x = layers.Reshape(image, name="to_image")(inputs)
    height, width, channels = want
    if (height, width) != tuple(image[:2]) and height and width:
        x = layers.Resizing(height, width, name="resize")(x)
    if channels != image[2]:
        if image[2] != 1:
            raise ConfigError(f"model.backbone {spec.source} takes {channels} channels but "
                              f"model.input_shape {list(image)} has {image[2]}; use a backbone "
                              f"for {image[2]}-channel images")
        x = layers.Concatenate(name="to_rgb")([x] * channels)
    app = spec.application
    if app is not None:
        scale, offset = _PIXELS[app]
        x = layers.Rescaling(scale, offset, name="to_pixels")(x)
        if app == "resnet50":
            x = layers.Normalization(mean=list(_CAFFE_MEANS), variance=[1.0, 1.0, 1.0],
                                     name="caffe_means")(x)
    return x
