"""What a finished model's record tells its reader: the test split's details in MLflow, and how
to load the model (driver side).

:func:`log_evaluation` writes :mod:`sparkdl_tune.executor.evaluation`'s details into a run:
classification's per-class precision/recall/F1 as metrics (``test_precision_<class id>``...) and
the confusion matrix as ``confusion_matrix.json`` (+ ``confusion_matrix.png``), every task's
details as ``evaluation.json``. :func:`usage` is the ``model`` block of a summary: the
registered model (``name/version``), the tracking URI (credentials redacted) and a two-line
load snippet for pyfunc and for a Spark UDF.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.json"
CONFUSION_PNG = "confusion_matrix.png"


def log_evaluation(details: Optional[Mapping[str, Any]], run_id: str, step: int = 0) -> None:
    """Record ``details`` (see the module docstring) in run ``run_id``; nothing when None."""
    if not details:
        return
    import mlflow

    client = mlflow.MlflowClient()
    client.log_dict(run_id, dict(details), EVALUATION_FILE)
    if "confusion_matrix" not in details:
        return
    from .store import log_steps

    per_class = details["per_class"]  # keyed by class name: metric keys keep the class id
    log_steps(run_id, {f"test_{name}_{i}": (step, [float(per_class[c][name])])
                       for i, c in enumerate(details["classes"])
                       for name in ("precision", "recall", "f1")})
    client.log_dict(run_id, {"classes": details["classes"],
                             "rows_true_columns_predicted": details["confusion_matrix"]},
                    CONFUSION_FILE)
    figure = confusion_figure(details["classes"], details["confusion_matrix"])
    if figure is not None:
        client.log_figure(run_id, figure, CONFUSION_PNG)
        import matplotlib.pyplot as plt

        plt.close(figure)


def confusion_figure(classes, matrix):
    """A matplotlib figure of the confusion matrix (counts in the cells); None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    size = max(3.0, 0.45 * len(classes) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(matrix, cmap="Blues")
    named = any(len(str(c)) > 3 for c in classes)  # names, not ids: slant them to fit
    ax.set_xticks(range(len(classes)), classes, rotation=40 if named else 0,
                  ha="right" if named else "center")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                    color="white" if top and n > top / 2 else "black")
    fig.colorbar(image, ax=ax)
    ax.set_title("Final model on the test split")
    fig.tight_layout()
    return fig


def usage(model_uri: Optional[str], run_id: Optional[str], registered_name: Optional[str],
          version: Optional[int], tracking_uri: Optional[str],
          task: Optional[str] = None) -> dict[str, Any]:
    """The ``model`` block of a summary: which model, where, and how to load it.

    The load URI is ``models:/name/version`` when the model was registered, else
    ``runs:/<run id>/model``. ``load`` holds two snippets of two lines each (run them with
    ``MLFLOW_TRACKING_URI`` set to the tracking URI): ``pyfunc`` predicts on ``x``, a float32
    array of shape ``(rows, input_dim)``; ``spark_udf`` scores a DataFrame ``df`` whose
    ``features`` column is an array of ``input_dim`` floats (one column, the model's single
    tensor input) into a ``prediction`` column: a double for regression, an array of class
    probabilities otherwise.
    """
    from .layout import MODEL_NAME

    registered = f"{registered_name}/{version}" if registered_name and version else None
    result = "double" if task == "regression" else "array<float>"
    uri = f"models:/{registered}" if registered else (
        f"runs:/{run_id}/{MODEL_NAME}" if run_id else model_uri)
    return {
        "registered_model": registered,
        "model_uri": uri,
        "tracking_uri": tracking_uri,
        "load": {
            "pyfunc": ("import mlflow\n"
                       f"model = mlflow.pyfunc.load_model({uri!r}); "
                       "predictions = model.predict(x)"),
            "spark_udf": ("import mlflow, pyspark.sql.functions as F\n"
                          f"score = mlflow.pyfunc.spark_udf(spark, {uri!r}, "
                          f"result_type={result!r}); "
                          "scored = df.withColumn('prediction', score(F.col('features')))"),
        },
    }


def usage_of(settings, trained: Optional[Mapping[str, Any]],
             task: Optional[str] = None) -> Optional[dict[str, Any]]:
    """:func:`usage` for a training's record (``run_id``, ``model_uri``,
    ``registered_version``) under the config's ``mlflow`` settings; None without one."""
    if not trained:
        return None
    from .uri import redact, tracking_uri

    return usage(trained.get("model_uri"), trained.get("run_id"),
                 settings.registered_model_name, trained.get("registered_version"),
                 redact(tracking_uri(settings)), task)


SPACE_FILE = "space_bounds.json"


def log_space(space, run_id: str) -> None:
    """The numeric dimensions' ranges, ``{key: {"kind", "low", "high"}}``, as the parent run's
    ``space_bounds.json`` (what the report's edge-of-range warnings compare the best value
    with)."""
    import mlflow

    bounds = {}
    for d in space.dimensions:
        low, high = getattr(d.spec, "low", None), getattr(d.spec, "high", None)
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            bounds[d.name] = {"kind": d.kind, "low": low, "high": high}
    try:
        mlflow.MlflowClient().log_dict(run_id, bounds, SPACE_FILE)
    except Exception as exc:  # MLflow away: the search goes on, the report warns less
        import logging

        logging.getLogger("sparkdl_tune.tracking").warning(
            "could not record the space's ranges (%s); the report will not check them",
            type(exc).__name__)


def _artifact_json(run_id: str, name: str) -> dict[str, Any]:
    import json

    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)
        with open(path) as f:
            return json.load(f)
    except Exception:  # not written (an older run) or unreadable: the report goes without
        return {}


def space_bounds(run_id: str) -> dict[str, Any]:
    """A search parent run's ``space_bounds.json``; ``{}`` when it has none."""
    return _artifact_json(run_id, SPACE_FILE)


def read_evaluation(run_id: str) -> Optional[dict[str, Any]]:
    """Run ``run_id``'s ``evaluation.json`` (see :func:`log_evaluation`); None without one."""
    return _artifact_json(run_id, EVALUATION_FILE) or None


def final_details(run) -> dict[str, Any]:
    """What the report shows of a final (or train) run beyond its metrics: ``evaluation``
    (its ``evaluation.json``) and ``model`` (:func:`usage`: registered name/version, URI,
    load snippet)."""
    import mlflow

    from .uri import redact

    version = None
    name = run.data.params.get("mlflow.registered_model_name")
    if name and name not in ("None", "null"):
        try:
            found = mlflow.MlflowClient().search_model_versions(
                f"name = '{name}' and run_id = '{run.info.run_id}'")
            version = max((int(v.version) for v in found), default=None)
        except Exception:
            version = None
    return {"evaluation": read_evaluation(run.info.run_id),
            "model": usage(None, run.info.run_id, name if version else None, version,
                           redact(mlflow.get_tracking_uri()), run.data.params.get("model.task"))}
