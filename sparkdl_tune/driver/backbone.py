"""Driver side of ``model.backbone``: check it before any training and ship it to executors.

A file or weights file that is not there, an MLflow model URI that does not resolve, a file
Keras cannot load or an ``output_layer`` it does not have: a :class:`ConfigError` (exit 2)
before the data is read. An MLflow model is loaded here once and saved as a Keras file named by
its URI (:func:`sparkdl_tune.executor.backbone.shipped_name`); files go to every executor with
``SparkContext.addFile``, so a cluster reads them as local mode does.
"""

from __future__ import annotations

import os
from typing import Optional

from .. import logs
from ..config.model_spec import APPLICATIONS, BackboneSpec
from ..errors import ConfigError

log = logs.get("backbone")

_SHIPPED: set[str] = set()  # per driver process: addFile refuses a changed file of one name


def check_and_ship(spec: Optional[BackboneSpec], spark=None) -> None:
    """Resolve, check and ship ``spec``'s files (see the module docstring)."""
    if spec is None:
        return
    if spec.application is not None:
        if spec.weights is not None:
            _ship(spark, _existing(spec.weights, "weights"))
        return
    path = _from_mlflow(spec.source) if spec.is_mlflow else _existing(spec.source, "source")
    _check_loads(spec, path)
    _ship(spark, path)


def check_and_ship_space(dimensions, base: Optional[BackboneSpec], spark=None) -> None:
    """The backbone files and MLflow models a search space chooses between
    (``model.backbone.source`` / ``weights`` dimensions, nested ones too), each checked and
    shipped like the config's own: a trial must not be the first to find one missing."""
    for dim in _all(dimensions):
        key = dim.name.rpartition(".")[2]
        if not dim.name.startswith("model.backbone.") or key not in ("source", "weights"):
            continue
        spec = dim.spec
        values = spec.values if hasattr(spec, "values") else [getattr(spec, "value", None)]
        for value in values:
            if not isinstance(value, str):
                continue
            if key == "weights":
                _ship(spark, _existing(value, "weights"))
            elif value.strip().lower() not in APPLICATIONS:
                one = BackboneSpec(source=value,
                                   output_layer=base.output_layer if base else None)
                check_and_ship(one, spark)


def _all(dimensions):
    for dim in dimensions:
        yield dim
        for children in getattr(dim, "children", ()):
            yield from _all(children)


def _existing(path: str, key: str) -> str:
    if not os.path.exists(path):
        raise ConfigError(f"model.backbone.{key} {path} does not exist; give a local Keras "
                          f"{'file' if key == 'source' else 'weights file (.h5)'} (nothing "
                          "is downloaded at run time)")
    return os.path.abspath(path)


def _from_mlflow(uri: str) -> str:
    """The MLflow model at ``uri`` saved as a Keras file (MLflow is set up already)."""
    from ..executor.backbone import shipped_dir, shipped_name
    from ..tracking.model import load_model

    try:
        model = load_model(uri)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"model.backbone.source {uri} cannot be loaded from the tracking "
                          f"store ({type(exc).__name__}: {first}); give runs:/<run_id>/model "
                          "or models:/<name>/<version> of a logged Keras model") from None
    os.makedirs(shipped_dir(), exist_ok=True)
    path = os.path.join(shipped_dir(), shipped_name(uri))
    tmp = path + f".tmp-{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, path)
    log.info("model.backbone: %s saved as %s", uri, path)
    return path


def _check_loads(spec: BackboneSpec, path: str) -> None:
    import tensorflow as tf

    from ..executor.compilation import custom_objects

    try:
        base = tf.keras.models.load_model(path, compile=False, custom_objects=custom_objects())
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"model.backbone.source {spec.source}: Keras cannot load it "
                          f"({type(exc).__name__}: {first}); give a .keras or .h5 file "
                          "saved by model.save(...)") from None
    names = [layer.name for layer in base.layers]
    if spec.output_layer and spec.output_layer not in names:
        raise ConfigError(f"model.backbone.output_layer {spec.output_layer!r} is not a layer "
                          f"of {spec.source}; pick one of {names}")
    if not spec.output_layer and len(names) < 3:
        raise ConfigError(f"model.backbone.source {spec.source} has {len(names)} layers; "
                          "dropping its last (the old head) leaves no backbone: give a deeper "
                          "model or model.backbone.output_layer")


def _ship(spark, path: str) -> None:
    if spark is None or path in _SHIPPED:
        return
    spark.sparkContext.addFile(path, recursive=os.path.isdir(path))
    _SHIPPED.add(path)
