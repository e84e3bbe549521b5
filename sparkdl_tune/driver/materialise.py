"""Driver side of the data path: a prepared dataset -> one :class:`SplitFiles` per split.

Each split is materialised once, by Spark, as Parquet that every reader
(:mod:`sparkdl_tune.executor.readers`) reads directly: features assembled
into one ``float32`` array column, label cast for the task, rows shuffled once, row groups
sized for sharding. The copy lives under ``data.cache_url`` in a folder named by a hash of
everything it depends on (manifest, split files, format version), so runs and trials on
unchanged data reuse it; a changed dataset gets a new folder. The copy always holds every
feature column: ``data.feature_columns`` (fixed, or a subset dimension of a search) is applied
when batches are built (:meth:`TrainingData.select`), so no selection makes a copy of its own.
The driver never collects rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import uuid

from .. import logs
from ..config.schema import DataSettings
from ..errors import ConfigError
from ..spec.data import SplitFiles, TrainingData
from .dataset import SPLITS, Manifest, read_split, split_path

log = logs.get("data")

FORMAT_VERSION = 2  # 2: feature elements non-null (required in Parquet)
FEATURES = "features"
LABEL = "label"
DEFAULT_CACHE_DIR = ".cache/petastorm"


def training_data(spark, settings: DataSettings, manifest: Manifest,
                  min_files: int = 2) -> TrainingData:
    """Materialise (or reuse) every split and describe each by its files and rows.

    Args:
        spark: The driver's SparkSession.
        settings: The ``data`` config section.
        manifest: The validated dataset's manifest.
        min_files: At least this many Parquet files per split (>= Horovod ranks, so every
            rank gets a shard).
    """
    _selected_features(settings, manifest)  # a bad selection fails here, before any copy
    layout = manifest.layout
    features = layout.features  # one copy of every feature: trials select their columns
    cache = cache_root(settings)
    splits = {split: SplitFiles(*_materialise(spark, settings, manifest, split, features,
                                              cache, min_files))
              for split in SPLITS}
    named = layout.feature_kind != "array"
    input_dim = len(features) if named else manifest.num_features
    data = TrainingData(splits=splits, input_dim=input_dim,
                        num_classes=layout.num_classes, task=layout.task,
                        feature_names=tuple(features) if named else (),
                        class_names=tuple(layout.class_names or ()))
    return data.select(settings.feature_columns)


def cache_root(settings: DataSettings) -> str:
    """The cache URL as ``file:///abs/path`` (or the remote URL as given)."""
    url = settings.cache_url or DEFAULT_CACHE_DIR
    if "://" in url:
        return url.rstrip("/")
    return "file://" + str(pathlib.Path(url).resolve())


def check_cache(settings: DataSettings) -> None:
    """``data.cache_url`` (or the default cache folder) can be written: asked before Spark
    starts, since the copy is written only after the session is up and the data validated."""
    from ..config.writable import check_folder, local_path

    path = local_path(cache_root(settings))
    if path is not None:
        check_folder("data.cache_url", path, "data cache folder")


def _selected_features(settings: DataSettings, manifest: Manifest) -> tuple[str, ...]:
    layout = manifest.layout
    if settings.feature_columns is None:
        return layout.features
    if layout.feature_kind == "array":
        raise ConfigError("data.feature_columns selects named columns, but this dataset keeps "
                          f"its features in one array column '{layout.features[0]}'; remove "
                          "data.feature_columns")
    unknown = [c for c in settings.feature_columns if c not in layout.features]
    if unknown or not settings.feature_columns:
        raise ConfigError(f"data.feature_columns {list(settings.feature_columns)}: "
                          f"{unknown or 'empty'} not among the dataset's features "
                          f"{list(layout.features)}; pick from those")
    return tuple(settings.feature_columns)


def _fingerprint(settings: DataSettings, manifest: Manifest, split: str,
                 features: tuple[str, ...], min_files: int) -> str:
    root = pathlib.Path(settings.path)
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                   for p in pathlib.Path(split_path(root, split)).glob("*.parquet"))
    key = {
        "version": FORMAT_VERSION, "split": split, "features": features,
        "manifest": json.loads(manifest.to_json()), "files": files,
        "row_group_mb": settings.row_group_mb, "min_files": min_files,
        "dataset": str(root.resolve()),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _materialise(spark, settings, manifest, split, features, cache, min_files):
    from pyspark.sql import functions as F

    name = f"{split}-{_fingerprint(settings, manifest, split, features, min_files)}"
    url = f"{cache}/{name}"
    rows = manifest.rows[split]
    if _committed(spark, url):
        log.debug("data: reusing %s", url)
        return url, _parquet_files(spark, url), rows
    layout = manifest.layout
    df = read_split(spark, settings.path, split)
    # Elements declared non-null (validation has already refused null features), so Parquet
    # stores them as required: no definition level per value, ~20% cheaper to decode.
    zero = F.lit(0.0).cast("float")
    if layout.feature_kind == "array":
        x = F.transform(F.col(layout.features[0]).cast("array<float>"),
                        lambda v: F.coalesce(v, zero))
    else:
        x = F.array(*[F.coalesce(F.col(c).cast("float"), zero) for c in features])
    y = F.col(layout.label).cast("int" if layout.task == "classification" else "float")
    row_bytes = 4 * (len(features) if layout.feature_kind == "columns"
                     else manifest.num_features) + 4
    files = max(min_files, min(64, -(-rows * row_bytes // (64 * 2**20))))
    # Shuffle once here, so every row group is a random sample: per-epoch shuffling then
    # only needs to reorder row groups and rows within them.
    shuffled = shuffled_once(df.select(x.alias(FEATURES), y.alias(LABEL)), files, seed=17)
    log.info("data: materialising the %s split (%d rows) -> %s", split, rows, url)
    writer = (shuffled.write.option("parquet.block.size", settings.row_group_mb * 2**20)
              .option("compression", "uncompressed"))
    if not url.startswith("file://"):
        writer.mode("overwrite").parquet(url)  # Spark's commit writes _SUCCESS last
        return url, _parquet_files(spark, url), rows
    local = url[len("file://"):]
    tmp = os.path.join(os.path.dirname(local), f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    writer.parquet("file://" + tmp)
    commit_local(tmp, local)
    return url, _parquet_files(spark, url), rows


def shuffled_once(df, files: int, seed: int):
    """``df`` in ``files`` partitions, rows in a seeded random order within each, so every
    row group written from it is a random sample."""
    from pyspark.sql import functions as F

    return (df.withColumn("_r", F.rand(seed=seed)).repartition(files)
            .sortWithinPartitions("_r").drop("_r"))


def commit_local(tmp: str, local: str) -> None:
    """Move a finished copy from ``tmp`` to ``local`` in one rename; when a concurrent run
    committed the same data first, its copy is used and ``tmp`` dropped."""
    try:
        os.replace(tmp, local)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _committed(spark, url: str) -> bool:
    if url.startswith("file://"):
        return os.path.isfile(os.path.join(url[len("file://"):], "_SUCCESS"))
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url + "/_SUCCESS")
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path)


def _parquet_files(spark, url: str) -> list[str]:
    if url.startswith("file://"):
        local = url[len("file://"):]
        return [f"{url}/{n}" for n in sorted(os.listdir(local)) if n.endswith(".parquet")]
    return sorted(spark.read.parquet(url).inputFiles())
