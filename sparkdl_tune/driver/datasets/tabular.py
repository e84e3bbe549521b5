"""CSV or Parquet with chosen feature and label columns -> seeded train/validation/test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ...errors import DataError
from ..dataset import Layout
from ..validation import check_schema
from .splits import assign_splits, check_fractions


@dataclass(frozen=True)
class TabularSource:
    """A table; ``features=None`` takes every column but the label (and the split column).

    A single array column as ``features`` gives an array layout; otherwise named columns.
    ``split_column`` keeps the table's own splits: its values are ``train``/``validation``/
    ``test``, or ``train``/``test`` with validation carved from train
    (``validation_fraction``, seeded); ``test_fraction`` is then unused.
    """

    path: str
    label: str = "label"
    features: Optional[tuple[str, ...]] = None
    task: str = "classification"
    num_classes: Optional[int] = None
    format: str = "auto"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 42
    split_column: Optional[str] = None

    def read(self, spark):
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import AnalysisException

        if "://" not in self.path and not os.path.exists(self.path):
            raise DataError(f"source {self.path} does not exist; check --input")
        fmt = self.format
        if fmt == "auto":
            fmt = "csv" if self.path.lower().endswith((".csv", ".csv.gz")) else "parquet"
        if fmt not in ("csv", "parquet"):
            raise DataError(f"--format {fmt!r} is not csv or parquet")
        try:
            if fmt == "csv":
                return spark.read.csv(self.path, header=True, inferSchema=True)
            return spark.read.parquet(self.path)
        except (AnalysisException, Py4JJavaError) as exc:
            first = _first_line(exc)
            raise DataError(f"cannot read {fmt} source {self.path} ({first}); check --input "
                            "and --format") from None

    def layout(self, spark) -> Layout:
        df = self.read(spark)
        features = self.features or tuple(c for c in df.columns
                                          if c not in (self.label, self.split_column))
        kind = "columns"
        if len(features) == 1 and features[0] in df.columns:
            from pyspark.sql.types import ArrayType

            if isinstance(df.schema[features[0]].dataType, ArrayType):
                kind = "array"
        return Layout(task=self.task, features=tuple(features), label=self.label,
                      feature_kind=kind, num_classes=self.num_classes)

    def splits(self, spark) -> dict:
        check_fractions(self.validation_fraction, self.test_fraction)
        df = self.read(spark)
        layout = self.layout(spark)
        check_schema(df, layout, f"source {self.path}")
        if self.split_column:
            return self._given_splits(df, layout)
        df = df.select(*layout.columns)
        return assign_splits(df, df.columns, self.seed, self.validation_fraction,
                             self.test_fraction)

    def _given_splits(self, df, layout) -> dict:
        """The table's own splits (``split_column``); only its distinct values reach the
        driver."""
        from pyspark.sql import functions as F

        col = self.split_column
        if col not in df.columns:
            raise DataError(f"source {self.path}: split column '{col}' is missing (columns: "
                            f"{', '.join(df.columns)}); fix --split-column")
        if col in layout.columns:
            raise DataError(f"--split-column {col} is also a feature or the label; name "
                            "--features without it")
        split = F.lower(F.trim(F.col(col).cast("string")))
        seen = {r[0] for r in df.select(split.alias("s")).distinct().limit(10).collect()}
        if seen not in ({"train", "validation", "test"}, {"train", "test"}):
            found = ", ".join(sorted(str(v) for v in seen))
            raise DataError(f"source {self.path}: split column '{col}' holds {found}; use "
                            "train/validation/test, or train/test (validation is then carved "
                            "from train with --validation-fraction)")
        parts = {name: df.where(split == name).select(*layout.columns) for name in seen}
        if "validation" not in parts:
            carved = assign_splits(parts["train"], layout.columns, self.seed,
                                   self.validation_fraction, 0.0)
            parts.update(train=carved["train"], validation=carved["validation"])
        return parts

    def describe(self) -> dict:
        return {"kind": "tabular", "path": self.path, "format": self.format,
                "validation_fraction": self.validation_fraction,
                "test_fraction": None if self.split_column else self.test_fraction,
                "split_column": self.split_column, "seed": self.seed}


def _first_line(exc: Exception) -> str:
    """The Java-side reason of a Spark error, without its stack trace."""
    text = str(getattr(exc, "java_exception", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
