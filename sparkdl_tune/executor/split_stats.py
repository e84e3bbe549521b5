"""Executor side of dataset validation: a ``mapInArrow`` function that sums up the rows of a
task's Arrow batches with numpy (row count, label range and classes, non-finite values,
feature lengths, min / max / sum / sum of squares) and yields one small JSON row per task;
the driver merges them (:func:`merge`) into one row of aggregates per split
(:mod:`sparkdl_tune.driver.validation`).

One Spark job reads every split once: the splits are a union of DataFrames with a split
number column. numpy over Arrow buffers does in one pass what Spark's higher-order array
functions (``exists``, ``aggregate``, ``array_min`` ...) did in five interpreted passes per
row, plus a second job per split for the class counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

SPLIT_COLUMN = "__sparkdl_tune_split"
SCHEMA = "stats string"


def partial_stats(kind: str, n_columns: int,
                  classification: bool) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The ``mapInArrow`` function over batches of ``n_columns`` feature columns (one array
    column when ``kind`` is ``array``), the label, then :data:`SPLIT_COLUMN`."""

    def run(batches):
        import numpy as np
        import pyarrow as pa

        found: dict[int, dict[str, Any]] = {}
        for batch in batches:
            splits = batch.column(batch.num_columns - 1).to_numpy(zero_copy_only=False)
            for split in np.unique(splits):
                part = batch.filter(pa.array(splits == split))
                merge_into(found.setdefault(int(split), {}),
                           _batch_stats(part, kind, n_columns, classification))
        yield pa.RecordBatch.from_arrays([pa.array([json.dumps(found)])], names=["stats"])

    return run


def _batch_stats(batch, kind: str, n_columns: int, classification: bool) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def floats(values) -> np.ndarray:  # nulls as NaN
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)

    out: dict[str, Any] = {"rows": batch.num_rows}
    label = floats(batch.column(n_columns))
    finite_or_inf = label[~np.isnan(label)]
    out["bad_label"] = int(len(label) - len(finite_or_inf))
    out["min_label"] = _min(finite_or_inf)
    out["max_label"] = _max(finite_or_inf)
    out["fractional_label"] = int(np.sum(finite_or_inf != np.floor(finite_or_inf)))
    if classification:
        keys, counts = np.unique(finite_or_inf[np.isfinite(finite_or_inf)].astype(np.int64),
                                 return_counts=True)
        out["counts"] = {str(k): int(c) for k, c in zip(keys, counts)}
    if kind == "array":
        column = batch.column(0)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        null_rows = column.is_null().to_numpy(zero_copy_only=False)
        flat = floats(pc.list_flatten(column))
        bad = ~np.isfinite(flat)
        owners = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        bad_rows = null_rows.copy()
        bad_rows[owners[bad]] = True
        present = lengths[~null_rows].astype(np.int64)
        out["min_len"], out["max_len"] = _min(present), _max(present)
        out["nonfinite_0"] = int(bad_rows.sum())
        _values(out, 0, flat[~bad])
    else:
        for i in range(n_columns):
            v = floats(batch.column(i))
            good = np.isfinite(v)
            out[f"nonfinite_{i}"] = int(len(v) - good.sum())
            _values(out, i, v[good])
    return out


def _values(out: dict[str, Any], i: int, v) -> None:
    out[f"min_{i}"], out[f"max_{i}"] = _min(v), _max(v)
    out[f"sum_{i}"] = float(v.sum()) if len(v) else 0.0
    out[f"sumsq_{i}"] = float((v * v).sum()) if len(v) else 0.0


def _min(v):
    return v.min().item() if len(v) else None


def _max(v):
    return v.max().item() if len(v) else None


def merge_into(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add ``part``'s aggregates to ``total`` (sums add, minima and maxima combine, class
    counts add); returns ``total``."""
    for key, value in part.items():
        old = total.get(key)
        if key == "counts":
            counts = total.setdefault("counts", {})
            for k, c in value.items():
                counts[k] = counts.get(k, 0) + c
        elif value is None or old is None:
            total[key] = old if value is None else value
        elif key.startswith("min"):
            total[key] = min(old, value)
        elif key.startswith("max"):
            total[key] = max(old, value)
        else:  # rows, bad and fractional counts, non-finite counts, sums
            total[key] = old + value
    return total


def merge(rows: list[str]) -> dict[int, dict[str, Any]]:
    """The per-task JSON rows merged into one dict of aggregates per split number."""
    total: dict[int, dict[str, Any]] = {}
    for row in rows:
        for split, part in json.loads(row).items():
            merge_into(total.setdefault(int(split), {}), part)
    return total
