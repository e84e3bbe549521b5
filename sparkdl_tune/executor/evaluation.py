"""Metrics computed from a model's predictions on the test split (rank 0, executor side).

Keras' ``evaluate`` gives the loss and the compiled metrics; this module adds what a reader
acts on: for regression R², RMSE (beside MSE/MAE) and the scores of a mean-prediction
baseline (a model that always predicts the mean label of the rows it was trained on); for
classification per-class precision/recall/F1 and the confusion matrix. numpy only; the
model and the dataset come from the caller.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

LABEL = "label"  # the materialised Parquet's label column (sparkdl_tune.driver.materialise)


def predictions(model, dataset: Iterable) -> tuple[Any, Any]:
    """One pass over a finite ``(x, y)`` dataset: the labels and the model's outputs."""
    import numpy as np

    ys, outs = [], []
    for x, y in dataset:
        ys.append(np.asarray(y))
        outs.append(np.asarray(model.predict_on_batch(x)))
    if not ys:
        return np.zeros((0,)), np.zeros((0, 1))
    return np.concatenate(ys), np.concatenate(outs)


def label_mean(file_urls: Iterable[str], column: str = LABEL) -> Optional[float]:
    """The mean of the label column over Parquet files, read one column batch at a time
    (never the features); None when the files cannot be read this way."""
    import numpy as np

    try:
        import pyarrow.parquet as pq
        from pyarrow import fs as pafs

        total, count = 0.0, 0
        for url in file_urls:
            filesystem, path = pafs.FileSystem.from_uri(url)
            with filesystem.open_input_file(path) as f:
                for batch in pq.ParquetFile(f).iter_batches(columns=[column]):
                    values = np.asarray(batch.column(0).to_numpy(zero_copy_only=False),
                                        dtype="float64")
                    total += float(values.sum())
                    count += values.size
    except Exception:  # an unusual file system: no baseline, the evaluation stands
        return None
    return total / count if count else None


def regression(y, pred, train_mean: Optional[float] = None) -> dict[str, float]:
    """MSE, MAE, RMSE, R² of ``pred`` against ``y``, and with ``train_mean`` the same scores of
    predicting that constant (``baseline_*``). R² is 1 - SSE/SST over the test rows (the
    baseline's R² is <= 0: it is the test mean's gap to the train mean)."""
    import numpy as np

    y = np.asarray(y, dtype="float64").reshape(-1)
    pred = np.asarray(pred, dtype="float64").reshape(-1)
    if y.size == 0:
        return {}
    sst = float(((y - y.mean()) ** 2).sum())

    def scores(err) -> dict[str, float]:
        mse = float((err ** 2).mean())
        return {"mse": mse, "mae": float(np.abs(err).mean()), "rmse": mse ** 0.5,
                "r2": 1.0 - float((err ** 2).sum()) / sst if sst > 0 else float("nan")}

    out = scores(pred - y)
    if train_mean is not None:
        out.update({f"baseline_{k}": v for k, v in scores(train_mean - y).items()})
    return out


def classification(y, outputs, num_classes: int, names: Sequence[str] = ()) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and the confusion matrix (rows: true class,
    columns: predicted class) of ``outputs`` (softmax rows, or one sigmoid column for two
    classes) against integer labels ``y``.

    ``classes`` lists class ``i``'s name at position ``i`` (``names[i]``, or ``"i"`` where
    the dataset gave none); ``per_class`` is keyed by those names.
    """
    import numpy as np

    y = np.asarray(y).reshape(-1).astype("int64")
    outputs = np.asarray(outputs)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        pred = (outputs.reshape(-1) >= 0.5).astype("int64")
    else:
        pred = outputs.argmax(axis=-1).astype("int64")
    k = max(int(num_classes), int(y.max(initial=0)) + 1, int(pred.max(initial=0)) + 1)
    matrix = np.zeros((k, k), dtype="int64")
    np.add.at(matrix, (y, pred), 1)
    classes = [str(names[c]) if c < len(names) else str(c) for c in range(k)]
    per_class = {}
    for c in range(k):
        tp = int(matrix[c, c])
        predicted, actual = int(matrix[:, c].sum()), int(matrix[c, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[classes[c]] = {"precision": precision, "recall": recall, "f1": f1,
                                 "support": actual}
    rows = int(matrix.sum())
    return {"classes": classes, "per_class": per_class,
            "confusion_matrix": matrix.tolist(),
            "accuracy": float(np.trace(matrix)) / rows if rows else float("nan"),
            "macro_f1": float(np.mean([v["f1"] for v in per_class.values()])) if k else 0.0}


def evaluate(model, dataset: Iterable, task: str, num_classes: Optional[int] = None,
             train_files: Iterable[str] = (), class_names: Sequence[str] = ()
             ) -> tuple[dict[str, float], dict[str, Any]]:
    """The test split's extra scores: ``(scalars, details)``.

    ``scalars`` (to be prefixed ``test_``): regression ``mse``, ``mae``, ``rmse``, ``r2`` and
    ``baseline_mse``/``baseline_mae``/``baseline_rmse``/``baseline_r2`` (the train mean as the
    prediction, from ``train_files``' label column); classification ``macro_f1``.
    ``details``: ``{"task", ...}`` with the baseline's mean (regression) or the per-class
    scores and the confusion matrix (classification, classes named by ``class_names`` where
    the dataset knows them), JSON-ready.
    """
    y, outputs = predictions(model, dataset)
    if task == "regression":
        mean = label_mean(train_files)
        scores = regression(y, outputs, mean)
        return scores, {"task": task, "rows": int(len(y)), "train_mean": mean,
                        "metrics": scores}
    details = classification(y, outputs, num_classes or 2, class_names)
    return {"macro_f1": details["macro_f1"]}, {"task": task, "rows": int(len(y)), **details}
