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
    """A table; ``features=None`` takes every column but the label.

    A single array column as ``features`` gives an array layout; otherwise named columns.
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
        features = self.features or tuple(c for c in df.columns if c != self.label)
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
        df = df.select(*layout.columns)
        return assign_splits(df, df.columns, self.seed, self.validation_fraction,
                             self.test_fraction)

    def describe(self) -> dict:
        return {"kind": "tabular", "path": self.path, "format": self.format,
                "validation_fraction": self.validation_fraction,
                "test_fraction": self.test_fraction, "seed": self.seed}


def _first_line(exc: Exception) -> str:
    """The Java-side reason of a Spark error, without its stack trace."""
    text = str(getattr(exc, "java_exception", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
