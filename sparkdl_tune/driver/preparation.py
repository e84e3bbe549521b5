"""The ``prepare`` workflow: a source -> a validated Parquet dataset with a manifest.

Rows are written by Spark into a hidden temporary folder beside ``out``, inspected there, and
only then renamed to ``out``; a failure at any step removes the temporary folder, so a rerun
never sees half a dataset.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
import uuid

from .. import logs
from ..errors import DataError, public
from ..files import replace_dir, write_json_atomic
from .dataset import MANIFEST, SPLITS, Manifest
from .validation import inspect_splits

log = logs.get("prepare")


@public
def prepare(source, out: str | os.PathLike, spark=None, overwrite: bool = False) -> Manifest:
    """Write ``source`` as a prepared dataset at ``out`` and return its manifest.

    Args:
        source: One of :mod:`sparkdl_tune.driver.datasets` (Fashion-MNIST, tabular, synthetic).
        out: Destination folder; must not exist unless ``overwrite``.
        spark: A SparkSession; the active one (or a new local one) when omitted.
        overwrite: Replace an existing dataset at ``out`` (atomically).

    Raises:
        DataError: bad source or dataset, naming the culprit and the fix.
    """
    from ..config.writable import check_folder
    from .session import get_spark

    out = pathlib.Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; pass --overwrite or choose another --out")
    check_folder("--out", str(out), "dataset folder")  # before Spark starts
    spark = spark or get_spark()
    started = time.monotonic()
    layout = source.layout(spark)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        frames = source.splits(spark)
        tmp.mkdir(parents=True)
        for split in SPLITS:
            log.info("prepare: writing %s split to %s", split, out / split)
            frames[split].write.parquet(str(tmp / split))
        log.info("prepare: validating the written splits")
        layout, stats = inspect_splits(spark, str(tmp), layout)
        schema = {f.name: f.dataType.simpleString()
                  for f in spark.read.parquet(str(tmp / "train")).schema.fields}
        manifest = Manifest(
            layout=layout,
            num_features=stats["train"].num_features,
            rows={s: st.rows for s, st in stats.items()},
            schema=schema,
            class_counts={s: st.class_counts for s, st in stats.items() if st.class_counts},
            feature_stats=stats["train"].feature_stats,
            source=source.describe(),
        )
        write_json_atomic(tmp / MANIFEST, manifest.to_json())
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("prepare: %s rows in %.1f s -> %s",
             ", ".join(f"{s} {n:,}" for s, n in manifest.rows.items()),
             time.monotonic() - started, out)
    return manifest
