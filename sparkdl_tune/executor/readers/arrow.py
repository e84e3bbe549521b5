"""pyarrow's own Parquet reader as the row-group reader (see :mod:`sparkdl_tune.executor.readers`).

It needs nothing beyond pyarrow, so it runs where Petastorm does not install (pyarrow >= 15)
and uses only what pyarrow 14 and 25 both have (``ParquetFile.iter_batches``, ``flatten``,
``to_numpy``, ``pyarrow.fs.FileSystem.from_uri``). Like Petastorm's reader it shards row
groups among ranks (row group ``i`` of the files in order goes to rank ``i % shard_count``), so
a validation pass on every rank reads every row exactly once; shuffled, each pass reads this
rank's row groups in a new seeded order. ``workers`` threads decode the next row groups while
TensorFlow consumes the current one (Arrow releases the GIL while it decodes); results come in
pass order, so a seed gives the same stream every run.
"""

from __future__ import annotations

import threading
from typing import Optional

FEATURES, LABEL = "features", "label"  # the materialised copy's columns (driver.materialise)


class ArrowReader:
    """This rank's row groups of ``urls`` as ``tf.data`` of ``(features, label)`` numpy
    pairs, one element per row group."""

    def __init__(self, urls: list[str], *, workers: int, shuffle: bool, seed: Optional[int],
                 num_epochs: Optional[int], cur_shard: Optional[int],
                 shard_count: Optional[int]):
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        self._urls, self._shuffle, self._num_epochs = list(urls), shuffle, num_epochs
        self._local = threading.local()  # each thread its own open files
        self._groups = _shard(self._row_groups(), cur_shard, shard_count)
        self._depth = max(1, workers) + 1  # row groups decoded ahead of the one consumed
        self._closed = False
        self._rng = np.random.default_rng(seed)  # one stream of orders across all passes
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="arrow-reader")

    def dataset(self):
        import tensorflow as tf

        x, y = self._signature()
        return tf.data.Dataset.from_generator(self._read, output_signature=(x, y))

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _read(self):
        """Passes of this rank's row groups, decoded ``workers`` + 1 groups ahead."""
        from collections import deque
        from concurrent.futures import CancelledError

        done = 0
        while self._num_epochs is None or done < self._num_epochs:
            order = (self._rng.permutation(len(self._groups)) if self._shuffle
                     else range(len(self._groups)))
            ahead: deque = deque()
            try:
                for i in order:
                    ahead.append(self._pool.submit(self._decode, *self._groups[i]))
                    if len(ahead) > self._depth:
                        yield ahead.popleft().result()
                while ahead:
                    yield ahead.popleft().result()
            except (CancelledError, RuntimeError):  # closed while TensorFlow still pulled
                if self._closed:
                    return
                raise
            done += 1

    def _decode(self, file: int, group: int):
        """Row group ``group`` of file ``file`` as ``(features, label)`` numpy arrays."""
        import pyarrow as pa

        pf = self._file(file)
        rows = pf.metadata.row_group(group).num_rows
        table = pa.Table.from_batches(list(pf.iter_batches(  # one batch: the whole group
            batch_size=max(1, rows), row_groups=[group], columns=[FEATURES, LABEL])))
        x = column_as_numpy(table.column(FEATURES))
        y = column_as_numpy(table.column(LABEL))
        if x is None or y is None or x.ndim != 2:
            raise ValueError(f"{self._urls[file]} row group {group}: the '{FEATURES}' column "
                             f"({table.schema.field(FEATURES).type}) is not a list of numbers "
                             f"of one length without nulls, or '{LABEL}' is not numeric")
        return x, y

    def _file(self, i: int):
        files = self._local.__dict__.setdefault("files", {})
        if i not in files:
            files[i] = open_parquet(self._urls[i])
        return files[i]

    def _row_groups(self) -> list[tuple[int, int]]:
        return [(f, g) for f in range(len(self._urls))
                for g in range(self._file(f).metadata.num_row_groups)]

    def _signature(self):
        """The ``tf.TensorSpec`` of features (width from the file's metadata) and label."""
        import tensorflow as tf

        schema = self._file(0).schema_arrow
        md = self._file(0).metadata
        width = None  # left unknown when the metadata does not tell
        if md.num_row_groups and md.row_group(0).num_rows:
            group = md.row_group(0)
            leaves = [group.column(j) for j in range(group.num_columns)
                      if group.column(j).path_in_schema.split(".")[0] == FEATURES]
            if len(leaves) == 1 and leaves[0].num_values % group.num_rows == 0:
                width = leaves[0].num_values // group.num_rows or None
        x_type = schema.field(FEATURES).type.value_type.to_pandas_dtype()
        y_type = schema.field(LABEL).type.to_pandas_dtype()
        return (tf.TensorSpec((None, width), tf.as_dtype(x_type)),
                tf.TensorSpec((None,), tf.as_dtype(y_type)))


def _shard(groups: list, cur_shard: Optional[int], shard_count: Optional[int]) -> list:
    if shard_count is None:
        return groups
    if len(groups) < shard_count:
        raise ValueError(f"{len(groups)} row groups cannot give each of {shard_count} ranks a "
                         "shard; lower execution.num_proc or data.row_group_mb")
    return groups[cur_shard::shard_count]


def open_parquet(url: str):
    """A ``pyarrow.parquet.ParquetFile`` for a ``file://`` URL (memory-mapped) or any URL
    ``pyarrow.fs`` knows (``hdfs://``, ``s3://``, ...)."""
    import pyarrow.parquet as pq

    if url.startswith("file://") or "://" not in url:
        return pq.ParquetFile(url[len("file://"):] if url.startswith("file://") else url,
                              memory_map=True)
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(url)
    return pq.ParquetFile(filesystem.open_input_file(path))


def column_as_numpy(column):
    """A numeric column as a numpy vector, a list column whose rows all have one length
    (``list`` or ``fixed_size_list`` of numbers) as a ``(rows, width)`` matrix, both without
    copying where Arrow allows; None for anything else (nulls, ragged lists, strings)."""
    import numpy as np
    import pyarrow as pa

    arr = column
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunks[0] if arr.num_chunks == 1 else arr.combine_chunks()
    if arr.null_count or len(arr) == 0:
        return None
    kind = arr.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return arr.to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(kind):
        width = kind.list_size
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = arr.offsets.to_numpy()
        width = int(offsets[1] - offsets[0])
        if not (np.diff(offsets) == width).all():
            return None
    else:
        return None
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        return None
    values = arr.flatten()  # this slice's values only (offsets respected)
    if values.null_count or len(values) != len(arr) * width:
        return None
    return values.to_numpy(zero_copy_only=False).reshape(len(arr), width)

