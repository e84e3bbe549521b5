"""Checks a dataset against its layout before any training reads it, and gathers its statistics.

One Spark job reads every split once and sums it up on the executors
(:mod:`sparkdl_tune.executor.split_stats`); the driver only receives one small row of
aggregates per task.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass, field, replace

from .. import logs
from ..errors import DataError, public
from .dataset import MANIFEST, SPLITS, Layout, Manifest, read_manifest, read_split

log = logs.get("data")


@dataclass(frozen=True)
class SplitStats:
    """What one pass over a split found."""

    rows: int
    num_features: int
    max_label: float | None
    class_counts: dict[str, int] = field(default_factory=dict)
    feature_stats: dict[str, dict[str, float]] = field(default_factory=dict)


def check_schema(df, layout: Layout, where: str) -> None:
    """Missing or mistyped columns; ``where`` names the split or source in the message."""
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in df.schema.fields}
    available = ", ".join(fields) or "none"
    for col in layout.columns:
        if col not in fields:
            flag = "--label" if col == layout.label else "--features"
            raise DataError(f"{where}: column '{col}' is missing (columns: {available}); "
                            f"fix {flag}")
    numeric = (T.NumericType,)
    if layout.feature_kind == "array":
        col = layout.features[0]
        dtype = fields[col]
        if not (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, numeric)):
            raise DataError(f"{where}: feature column '{col}' is {dtype.simpleString()}, not an "
                            "array of numbers; store features as array<float>")
    else:
        for col in layout.features:
            if not isinstance(fields[col], numeric):
                raise DataError(f"{where}: feature column '{col}' is "
                                f"{fields[col].simpleString()}, not numeric; cast or encode it "
                                "as a number, or drop it from --features")
    label_type = fields[layout.label]
    if not isinstance(label_type, numeric):
        fix = ("encode classes as integers 0..K-1" if layout.task == "classification"
               else "cast it to a number")
        raise DataError(f"{where}: label column '{layout.label}' is "
                        f"{label_type.simpleString()}, not numeric; {fix}")


def aggregate_splits(frames: dict, layout: Layout) -> dict[str, dict]:
    """One Spark job over every split in ``frames`` (name -> DataFrame): per split, one dict
    of aggregates (row count, label range and class counts, non-finite values, feature
    lengths, min / max / sum / sum of squares), summed up on the executors
    (:mod:`sparkdl_tune.executor.split_stats`)."""
    from functools import reduce

    from pyspark.sql import functions as F

    from ..executor.split_stats import SCHEMA, SPLIT_COLUMN, merge, partial_stats

    names = list(frames)
    columns = [F.col(c) for c in (*layout.features, layout.label)]
    parts = [frames[name].select(*columns).withColumn(SPLIT_COLUMN, F.lit(i))
             for i, name in enumerate(names)]
    union = reduce(lambda a, b: a.unionByName(b), parts)
    rows = union.mapInArrow(partial_stats(layout.feature_kind, len(layout.features),
                                          layout.task == "classification"), SCHEMA).collect()
    merged = merge([r["stats"] for r in rows])
    return {name: merged.get(i, {"rows": 0}) for i, name in enumerate(names)}


def split_stats(row: dict, layout: Layout, where: str) -> SplitStats:
    """Check one split's aggregates (:func:`aggregate_splits`) and make its statistics."""
    rows = row["rows"]
    if rows == 0:
        raise DataError(f"{where} is empty; give it rows (check the split fractions or the "
                        "source filter)")
    for i, name in enumerate(layout.features):
        if row[f"nonfinite_{i}"]:
            raise DataError(f"{where}: {row[f'nonfinite_{i}']} of {rows} rows have NaN, inf or "
                            f"null in feature '{name}'; clean or impute them before training")
    if layout.feature_kind == "array":
        if row["min_len"] != row["max_len"]:
            raise DataError(f"{where}: feature arrays in '{layout.features[0]}' have unequal "
                            f"lengths ({row['min_len']}..{row['max_len']}); pad or truncate "
                            "them to one length")
        num_features = int(row["min_len"])
        n = rows * num_features
    else:
        num_features = len(layout.features)
        n = rows
    if row["bad_label"]:
        raise DataError(f"{where}: {row['bad_label']} rows have a null or NaN label in "
                        f"'{layout.label}'; drop or fix them")
    if layout.task == "classification":
        _check_classes(row, layout, where)
    stats = {}
    for i, name in enumerate(layout.features):
        mean = row[f"sum_{i}"] / n
        var = max(row[f"sumsq_{i}"] / n - mean * mean, 0.0)
        stats[name] = {"min": row[f"min_{i}"], "max": row[f"max_{i}"], "mean": mean,
                       "std": var ** 0.5}
    counts = {}
    if layout.task == "classification":
        counts = {k: int(c) for k, c in sorted(row.get("counts", {}).items(),
                                                key=lambda kc: int(kc[0]))}
    return SplitStats(rows=rows, num_features=num_features, max_label=row["max_label"],
                      class_counts=counts, feature_stats=stats)


def _check_classes(row: dict, layout: Layout, where: str) -> None:
    if row["fractional_label"]:
        raise DataError(f"{where}: {row['fractional_label']} labels in '{layout.label}' are "
                        "not integers; classification needs class ids 0..K-1 (or use "
                        "--task regression)")
    if row["min_label"] < 0:
        raise DataError(f"{where}: label {row['min_label']:g} in '{layout.label}' is out of "
                        "range; class ids must be 0..K-1")
    k = layout.num_classes
    if k is not None and row["max_label"] >= k:
        raise DataError(f"{where}: label {row['max_label']:g} in '{layout.label}' is out of "
                        f"range for {k} classes; class ids must be 0..{k - 1} (or raise "
                        "--num-classes)")


def inspect_splits(spark, root: str, layout: Layout) -> tuple[Layout, dict[str, SplitStats]]:
    """Inspect every split under ``root``; feature counts must agree across splits.

    For classification without ``num_classes`` the class count is taken from ``train`` and
    the other splits must stay within it. Returns the completed layout and the statistics.
    """
    frames = {}
    for split in SPLITS:
        frames[split] = read_split(spark, root, split)
        check_schema(frames[split], layout, f"split '{split}'")
    rows = aggregate_splits(frames, layout)
    stats = {}
    for split in SPLITS:
        stats[split] = split_stats(rows[split], layout, f"split '{split}'")
        if split == "train" and layout.task == "classification" and layout.num_classes is None:
            layout = replace(layout, num_classes=int(stats[split].max_label) + 1)
    lengths = {s: st.num_features for s, st in stats.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"feature lengths differ between splits {lengths}; prepare all splits "
                        "from one source")
    return layout, stats


@public
def validate_dataset(spark, root: str, stamp_dir: str | None = None) -> Manifest:
    """Check a prepared dataset against its manifest before training reads it.

    Args:
        spark: The driver's SparkSession.
        root: The prepared dataset folder.
        stamp_dir: When given, a passed check leaves a stamp named by the dataset's
            fingerprint (manifest + file names, sizes, mtimes) here, and a later call on the
            unchanged dataset skips the scan.

    Raises:
        DataError: naming the split, the column and the fix.
    """
    manifest = read_manifest(root)
    stamp = os.path.join(stamp_dir, _fingerprint(root)) if stamp_dir else None
    if stamp and os.path.exists(stamp):
        log.info("data: %s unchanged since it was last validated", root)
        return manifest
    log.info("data: validating %s", root)
    _, stats = inspect_splits(spark, root, manifest.layout)
    if stats["train"].num_features != manifest.num_features:
        raise DataError(f"{root}: features have {stats['train'].num_features} values but the "
                        f"manifest says {manifest.num_features}; prepare the dataset again")
    if stamp:
        os.makedirs(stamp_dir, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(root + "\n")
    return manifest


def _fingerprint(root: str) -> str:
    base = pathlib.Path(root)
    entries = [(MANIFEST, (base / MANIFEST).read_text())]
    for split in SPLITS:
        for p in sorted((base / split).glob("*")):
            st = p.stat()
            entries.append((f"{split}/{p.name}", st.st_size, st.st_mtime_ns))
    return hashlib.sha256(repr((str(base.resolve()), entries)).encode()).hexdigest()[:24]
