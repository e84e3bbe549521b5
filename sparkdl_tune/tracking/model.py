"""A trained Keras model in MLflow: logged with its training's params, metrics and evaluation
(:func:`log_training`), and loaded back (:func:`load_model`).

Above :mod:`.store` (runs, params, metrics) and :mod:`.results` (evaluation artifacts): the one
tracking module that knows the model flavour: ``mlflow.tensorflow`` where ``tf.keras`` is
Keras 2 (profile classic), MLflow's Keras 3 flavour ``mlflow.keras`` (a ``.keras`` file) where
it is Keras 3 (profile current). It takes the Keras model it logs from the
caller (the driver rebuilds it from the result), so tracking imports no executor code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Optional

from ..config.schema import MlflowSettings
from ..errors import public
from ..spec.result import TrainResult
from .layout import MODEL_NAME
from .results import log_evaluation
from .store import active_run_id, log_metrics, log_params, muted, prepare

EXAMPLE_ROWS = 4
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")


def log_training(result: TrainResult, model, params: Mapping[str, Any],
                 register_name: Optional[str] = None, run_id: Optional[str] = None) -> dict:
    """Record one training in the active run (or ``run_id``): params, metrics and the model.

    History metrics are logged per epoch (``step`` = epoch index); test metrics and
    ``wall_seconds``, ``samples_per_second``, ``epochs_run``, ``num_proc`` and
    ``learning_rate`` at the last epoch's step. The model (the result's network, rebuilt on the
    driver by :func:`sparkdl_tune.executor.models.rebuild`) is logged with a signature (float32
    ``(-1, input_dim)`` in, predictions out) and, under Keras 2, a small input example.

    Args:
        result: What the training returned.
        model: Its Keras model.
        params: Hyper-parameters / config to log (:func:`.store.log_params`).
        register_name: Register the model under this name (a new version each call).
        run_id: Log into this run instead of the active one.

    Returns:
        ``{"run_id", "model_uri", "registered_version"}``; the version is None when not
        registered. ``model_uri`` loads with :func:`load_model`.
    """
    import numpy as np
    from mlflow.models import infer_signature

    run_id = run_id or active_run_id()
    log_params(params, run_id)  # first: MLflow copies the run's params onto the logged model
    summary = {**result.test_metrics, "wall_seconds": result.wall_seconds,
               "samples_per_second": result.samples_per_second, "epochs_run": result.epochs_run,
               "num_proc": result.num_proc, "learning_rate": result.learning_rate}
    last = log_metrics(result.history, summary, run_id)
    log_evaluation(result.extra.get("evaluation"), run_id, last)  # per-class, confusion matrix
    example = np.random.default_rng(0).random((EXAMPLE_ROWS, result.input_dim), dtype=np.float32)
    signature = infer_signature(example, model(example, training=False).numpy())
    logged = {"name": MODEL_NAME, "signature": signature, "input_example": example,
              "registered_model_name": register_name, "pip_requirements": _pip_requirements(),
              "run_id": run_id, "step": last}
    with muted():
        if _keras3():  # the keras flavour; its log_model takes no run_id, Model.log does
            import mlflow.keras
            from mlflow.models import Model

            # It fails to write an input example (mlflow issue 16183: no folder for it yet);
            # the signature still gives the input's schema to serving and spark_udf.
            logged.pop("input_example")
            info = Model.log(artifact_path=None, flavor=mlflow.keras, model=model, **logged)
        else:
            import mlflow.tensorflow

            info = mlflow.tensorflow.log_model(model, **logged)
    version = getattr(info, "registered_model_version", None)  # MLflow prints "Created version"
    return {"run_id": run_id, "model_uri": info.model_uri,
            "registered_version": int(version) if version is not None else None}


@public
def load_model(model_uri: str, settings: Optional[MlflowSettings] = None):
    """Load a logged model back as a ``tf.keras`` model.

    ``model_uri`` is what :func:`log_training` returned (``models:/<id>``), or ``models:/<name>/
    <version>`` or ``runs:/<run_id>/model``. Pass ``settings`` when MLflow is not set up yet in
    this process. For framework-free inference, ``mlflow.pyfunc.load_model(uri).predict(x)``
    with a float32 ``np.ndarray`` of shape ``(n, input_dim)`` also works.
    """
    if settings is not None:
        prepare(settings)
    with muted():
        if _keras3():
            import mlflow.keras

            return mlflow.keras.load_model(model_uri)
        import mlflow.tensorflow

        return mlflow.tensorflow.load_model(model_uri)


def _keras3() -> bool:
    from ..keras_compat import keras_major

    return keras_major() >= 3


def _pip_requirements() -> list[str]:
    """Pinned from this environment: MLflow's inference spawns a TensorFlow process (~8 s/model).

    MLflow adds its own pin; cloudpickle reads the Keras custom objects MLflow saves.
    """
    from importlib import metadata

    reqs = []
    keras = (("keras",),) if _keras3() else ()  # Keras 3 is its own package beside TensorFlow
    for names in (_TF_DISTRIBUTIONS, *keras, ("numpy",), ("cloudpickle",)):
        for name in names:
            with contextlib.suppress(metadata.PackageNotFoundError):
                reqs.append(f"{name}=={metadata.version(name)}")
                break
        else:
            reqs.append(names[0])
    return reqs
