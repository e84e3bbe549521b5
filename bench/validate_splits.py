"""Validating a prepared dataset's three splits (what `prepare` does after writing and what the
first `train`/`tune` on a dataset does): ours — one Spark job, numpy over Arrow batches on the
executors (sparkdl_tune.driver.validation.inspect_splits) — against the anchor measured in
the same run: the same checks as Spark SQL aggregations (array higher-order functions, then a
groupBy per split for the class counts: the implementation before it), each repetition
alternating the two, on one local[2] SparkSession after a warm-up of each.

    .venv/bin/python bench/validate_splits.py [--dataset data/fashion-mnist] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def spark_sql_aggregations(spark, root: str, layout) -> dict:
    """The anchor: per split one aggregation row and one groupBy of the label."""
    from pyspark.sql import functions as F

    from sparkdl_tune.driver.dataset import SPLITS, read_split

    out = {}
    for split in SPLITS:
        df = read_split(spark, root, split)
        label = F.col(layout.label)
        aggs = [F.count(F.lit(1)).alias("rows"),
                F.sum(F.when(label.isNull() | F.isnan(label), 1).otherwise(0)).alias("bad"),
                F.min(label).alias("min_label"), F.max(label).alias("max_label"),
                F.sum(F.when(label != F.floor(label), 1).otherwise(0)).alias("fractional")]
        if layout.feature_kind == "array":
            c = F.col(layout.features[0])
            x = c.cast("array<double>")
            bad = F.exists(x, lambda v: v.isNull() | F.isnan(v) | (F.abs(v) == float("inf")))
            aggs += [F.min(F.size(c)), F.max(F.size(c)),
                     F.sum(F.when(c.isNull() | bad, 1).otherwise(0)),
                     F.min(F.array_min(x)), F.max(F.array_max(x)),
                     F.sum(F.aggregate(x, F.lit(0.0), lambda a, v: a + v)),
                     F.sum(F.aggregate(x, F.lit(0.0), lambda a, v: a + v * v))]
        else:
            for name in layout.features:
                v = F.col(name).cast("double")
                aggs += [F.sum(F.when(v.isNull() | F.isnan(v), 1).otherwise(0)), F.min(v),
                         F.max(v), F.sum(v), F.sum(v * v)]
        row = df.agg(*aggs).first().asDict()
        if layout.task == "classification":
            row["counts"] = df.groupBy(label.cast("int")).count().collect()
        out[split] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/fashion-mnist")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pyspark.sql import SparkSession

    from sparkdl_tune.driver.dataset import read_manifest
    from sparkdl_tune.driver.validation import inspect_splits

    layout = read_manifest(args.dataset).layout
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this venv's pyarrow
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    runs = {"anchor": [], "ours": []}
    kinds = {"anchor": lambda: spark_sql_aggregations(spark, args.dataset, layout),
             "ours": lambda: inspect_splits(spark, args.dataset, layout)}
    for kind in kinds.values():  # warm-up: Python workers, JIT, page cache
        kind()
    for rep in range(args.repeat):
        for name, kind in (kinds.items() if rep % 2 == 0 else reversed(kinds.items())):
            started = time.monotonic()
            kind()
            runs[name].append(time.monotonic() - started)
    anchor, ours = statistics.median(runs["anchor"]), statistics.median(runs["ours"])
    print(f"validate {args.dataset}: Spark SQL aggregations {anchor:.2f} s "
          f"{[round(x, 2) for x in runs['anchor']]}, ours {ours:.2f} s "
          f"{[round(x, 2) for x in runs['ours']]}; ours / anchor {ours / anchor:.2f} "
          f"({anchor / ours:.1f}x faster)")


if __name__ == "__main__":
    main()
