"""Driver side: the k folds of train+validation that a cross-validated search trains on.

``search.cv_folds: k`` splits the rows of the materialised train and validation copies (see
:mod:`sparkdl_tune.driver.materialise`) into k folds, once: each row goes to fold
``xxhash64(features, label, seed) mod k`` (deterministic, whatever the partitioning; equal rows
share a fold, so no duplicate sits on both sides of a split). Each fold is its own Parquet
folder of at least ``min_files`` files (every Horovod rank gets a shard), shuffled within like
the splits, under ``<cache>/folds-<fingerprint>`` where the fingerprint names the two copies,
k, the seed and ``min_files``: unchanged inputs reuse the folds, new ones get a new folder.
Written under a temporary name and renamed when complete (a local cache), so a rerun never
sees half the folds. Row counts come from a tiny ``groupBy`` count; the driver never collects
rows.

Fold ``i``'s :class:`~sparkdl_tune.spec.data.TrainingData` trains on the files of the other
folds, validates on fold ``i`` and tests on the unchanged test split; its feature columns
(``feature_names``, ``columns``) are the dataset's, so feature subsets work as without folds.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import replace

from .. import logs
from ..errors import ConfigError
from ..spec.data import SplitFiles, TrainingData
from .materialise import (
    FEATURES,
    LABEL,
    _committed,
    _parquet_files,
    commit_local,
    shuffled_once,
)

log = logs.get("data")

FORMAT_VERSION = 1
FOLD_COLUMN = "_fold"


def fold_data(spark, data: TrainingData, k: int, seed: int = 42,
              min_files: int = 2, row_group_mb: int = 1) -> list[TrainingData]:
    """The k cross-validation datasets of ``data`` (materialised once, then reused).

    Args:
        spark: The driver's SparkSession.
        data: The prepared splits (train, validation, test).
        k: Number of folds (``search.cv_folds``), 2 or more.
        seed: Seeds the fold assignment (``execution.seed``).
        min_files: At least this many Parquet files per fold (>= Horovod ranks).
        row_group_mb: Parquet row-group size as written (``data.row_group_mb``).

    Raises:
        ConfigError: A fold would have fewer rows than ``min_files`` (too many folds for the
            rows of train+validation).
    """
    train, val = data.splits["train"], data.splits["validation"]
    total = train.rows + val.rows
    if total < k * min_files:
        raise ConfigError(f"search.cv_folds is {k} but train+validation has {total} rows, "
                          f"fewer than {min_files} per fold; lower search.cv_folds")
    sources = list(train.files + val.files)
    root = train.url.rstrip("/").rsplit("/", 1)[0]
    key = {"version": FORMAT_VERSION, "train": train.url,
           "validation": val.url, "files": sources, "k": k, "seed": seed,
           "min_files": min_files, "row_group_mb": row_group_mb}
    name = "folds-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    url = f"{root}/{name}"
    if _committed(spark, url):
        log.debug("data: reusing the %d folds in %s", k, url)
        rows = _counts(spark.read.parquet(*[_fold_url(url, i) for i in range(k)])
                       .withColumn(FOLD_COLUMN, _fold_of_file()), k)
    else:
        rows = _write(spark, sources, url, name, k, seed, min_files, total, row_group_mb)
    folds = []
    files = [_parquet_files(spark, _fold_url(url, i)) for i in range(k)]
    for i in range(k):
        rest = [f for j in range(k) if j != i for f in files[j]]
        fit = SplitFiles(url, rest, total - rows[i])
        held = SplitFiles(_fold_url(url, i), files[i], rows[i])
        folds.append(replace(data, splits={**data.splits, "train": fit, "validation": held}))
    return folds


def _fold_url(url: str, i: int) -> str:
    return f"{url}/fold-{i}"


def _fold_of_file():
    from pyspark.sql import functions as F

    return F.regexp_extract(F.input_file_name(), r"/fold-(\d+)/", 1).cast("int")


def _counts(df, k: int) -> list[int]:
    counted = {int(r[0]): int(r[1]) for r in df.groupBy(FOLD_COLUMN).count().collect()}
    return [counted.get(i, 0) for i in range(k)]


def _write(spark, sources: list[str], url: str, name: str, k: int, seed: int,
           min_files: int, total: int, row_group_mb: int) -> list[int]:
    from pyspark.sql import functions as F

    df = spark.read.parquet(*sources).withColumn(
        FOLD_COLUMN, F.pmod(F.xxhash64(F.col(FEATURES), F.col(LABEL), F.lit(seed)), F.lit(k)))
    rows = _counts(df, k)
    small = [(i, n) for i, n in enumerate(rows) if n < min_files]
    if small:
        i, n = small[0]
        raise ConfigError(f"search.cv_folds is {k} but fold {i + 1} of the {total} rows of "
                          f"train+validation gets {n} (fewer than {min_files}); lower "
                          "search.cv_folds")
    log.info("data: splitting train+validation (%d rows) into %d folds of %s rows -> %s",
             total, k, "/".join(map(str, rows)), url)
    local = url[len("file://"):] if url.startswith("file://") else None
    target = url
    if local is not None:
        target = "file://" + os.path.join(os.path.dirname(local),
                                          f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    for i in range(k):
        files = max(min_files, min(64, len(sources) * rows[i] // max(1, total)))
        part = shuffled_once(df.where(F.col(FOLD_COLUMN) == i).drop(FOLD_COLUMN), files,
                             seed=seed + i)
        (part.write.mode("overwrite").option("compression", "uncompressed")
         .option("parquet.block.size", row_group_mb * 2**20)
         .parquet(_fold_url(target, i)))
    if local is None:
        _touch_success(spark, url)
        return rows
    tmp = target[len("file://"):]
    open(os.path.join(tmp, "_SUCCESS"), "w").close()
    commit_local(tmp, local)  # (a concurrent run's folds, committed first, win)
    return rows


def _touch_success(spark, url: str) -> None:
    """The folder's own ``_SUCCESS``, written after every fold (remote caches)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url + "/_SUCCESS")
    path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).create(path, True).close()
