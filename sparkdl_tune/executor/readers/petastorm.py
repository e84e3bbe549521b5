"""Petastorm as the row-group reader (see :mod:`sparkdl_tune.executor.readers`).

Petastorm's reader (ventilator, thread pool, sharding by row group) delivers whole row groups;
the classes of :func:`_fast_classes` decode a row group into numpy without per-row Python work
and draw a new row-group order every pass.
"""

from __future__ import annotations

from typing import Optional


class PetastormReader:
    """This rank's row groups of ``urls`` as ``tf.data`` of ``(features, label)`` numpy
    pairs, one element per row group."""

    def __init__(self, urls: list[str], *, workers: int, shuffle: bool, seed: Optional[int],
                 num_epochs: Optional[int], cur_shard: Optional[int],
                 shard_count: Optional[int]):
        self._reader = _make_reader(urls, workers=workers, shuffle=shuffle, seed=seed,
                                    num_epochs=num_epochs, cur_shard=cur_shard,
                                    shard_count=shard_count)

    def dataset(self):
        import tensorflow as tf
        from petastorm.tf_utils import make_petastorm_dataset

        return make_petastorm_dataset(self._reader).map(
            tf.autograph.experimental.do_not_convert(_features_and_label))

    def close(self) -> None:
        self._reader.stop()
        self._reader.join()


_PASSES_PLANNED = 64  # row-group orders drawn ahead for an endless reader, then they recur
_WAIT_S = 0.05  # reader threads block on their queues this long between looks at the stop flag
_VENTILATION_WAIT_S = 0.02  # the ventilator's sleep while the workers have enough queued


def _make_reader(urls: list[str], *, workers: int, shuffle: bool, seed: Optional[int],
                 num_epochs: Optional[int], cur_shard: Optional[int],
                 shard_count: Optional[int]):
    """A Petastorm batch reader over ``urls`` with the classes of :func:`_fast_classes`.

    The same parts ``petastorm.make_batch_reader`` assembles (thread pool, ventilator,
    sharding by row group), with a lighter worker, a new row-group order on every pass and a
    short results queue and threads that do not poll; should this Petastorm's ``Reader`` not
    take them, the stock
    ``make_batch_reader`` is used (same rows; slower, one row-group order for all passes).
    Rows within a row group come in stored order:
    :func:`sparkdl_tune.executor.stream._permute_rows` shuffles them.
    """
    common = dict(num_epochs=num_epochs, shuffle_row_groups=shuffle, seed=seed,
                  cur_shard=cur_shard, shard_count=shard_count)
    try:
        from petastorm.fs_utils import get_filesystem_and_path_or_paths
        from petastorm.reader import normalize_dataset_url_or_urls

        reader_class, worker_class, pool_class = _fast_classes()
        fs, paths = get_filesystem_and_path_or_paths(normalize_dataset_url_or_urls(urls))
        # A queued result is a decoded row group: a few per worker, not Petastorm's 50.
        pool = pool_class(workers, results_queue_size=4 * workers)
        return reader_class(fs, paths, worker_class=worker_class, reader_pool=pool,
                            is_batched_reader=True, **common)
    except (ImportError, TypeError, AttributeError) as exc:
        from petastorm import make_batch_reader

        from ... import logs

        logs.get("worker").warning("data: this Petastorm's Reader differs (%s); using "
                                   "make_batch_reader (slower)", exc)
        return make_batch_reader(urls, workers_count=workers, **common)


_FAST_CLASSES: Optional[tuple] = None


def _fast_classes():
    """Subclasses of Petastorm's ``Reader``, ``ArrowReaderWorker`` and ``ThreadPool`` (built on
    first use).

    The worker: the stock one opens the file twice per row group (once through a Python file
    object, so reads hold the GIL), copies every row group with ``Table.take`` even when not
    shuffling rows, and turns an array column into a matrix through one numpy array per row
    (``np.vstack`` of a pandas object column). This one keeps each file open (natively for
    local files), reads the row group, and views a fixed-length list column's values as a
    ``(rows, width)`` matrix without copying. Predicates, transform specs, row-drop
    partitions, partitioned datasets, local caches and columns that do not fit (nulls, ragged
    lists, strings) take the stock code.

    The reader: Petastorm's ventilator draws the row-group order once, so an endless reader
    (``num_epochs=None``) repeats it on every pass. This one ventilates a fresh permutation
    of the row groups for each pass.

    The thread pool: Petastorm's threads wait on their queues in 1 ms slices (an idle worker,
    or one whose results queue is full, wakes 1,000 times a second and takes the GIL each
    time; with two streams of two workers that is 4,000 wake-ups a second beside the training
    loop) and its ventilator in 10 ms slices. Here the same code waits :data:`_WAIT_S` and
    :data:`_VENTILATION_WAIT_S`: queue operations still return as soon as they can, only a
    stop request is noticed later. (The pool's methods are rebound to module globals with
    these values, so no Petastorm code is copied or patched.)
    """
    global _FAST_CLASSES
    if _FAST_CLASSES is not None:
        return _FAST_CLASSES
    import types

    import numpy as np
    import pyarrow.parquet as pq
    from petastorm.arrow_reader_worker import ArrowReaderWorker, convert_arrow_table_to_numpy_dict
    from petastorm.cache import NullCache
    from petastorm.reader import Reader
    from petastorm.workers_pool import thread_pool
    from petastorm.workers_pool.ventilator import ConcurrentVentilator

    from .arrow import column_as_numpy

    def rebind(fn, **names):
        """``fn`` reading ``names`` from its module globals with the values given."""
        return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__,
                                  fn.__defaults__, fn.__closure__)

    class QuietWorkerThread(thread_pool.WorkerThread):
        run = rebind(thread_pool.WorkerThread.run, IO_TIMEOUT_INTERVAL_S=_WAIT_S)

    class QuietThreadPool(thread_pool.ThreadPool):
        start = rebind(thread_pool.ThreadPool.start, WorkerThread=QuietWorkerThread)
        _stop_aware_put = rebind(thread_pool.ThreadPool._stop_aware_put,
                                 IO_TIMEOUT_INTERVAL_S=_WAIT_S)

    class FastArrowReaderWorker(ArrowReaderWorker):
        def process(self, piece_index, worker_predicate, shuffle_row_drop_partition):
            piece = self._split_pieces[piece_index]
            if (worker_predicate or shuffle_row_drop_partition[1] != 1 or self._transform_spec
                    or self._shuffle_rows or not isinstance(self._local_cache, NullCache)
                    or piece.partition_keys or piece.row_group is None):
                return super().process(piece_index, worker_predicate, shuffle_row_drop_partition)
            names = [f.name for f in self._schema.fields.values()]
            table = self._file(piece.path).read_row_group(piece.row_group, columns=names)
            if table.num_rows == 0:
                return
            out = {}
            for name in names:
                values = column_as_numpy(table.column(name))
                if values is None:
                    values = convert_arrow_table_to_numpy_dict(table.select([name]),
                                                               self._schema)[name]
                out[name] = values
            self.publish_func(out)

        def _file(self, path):
            files = self.__dict__.setdefault("_open_files", {})
            if path not in files:
                fs = self._filesystem
                local = type(fs).__name__ == "LocalFileSystem"
                files[path] = pq.ParquetFile(path if local else fs.open(path, "rb"),
                                             memory_map=local)
            return files[path]

    class ReshufflingReader(Reader):
        def _create_ventilator(self, row_group_indexes, shuffle_row_groups,
                               shuffle_row_drop_partitions, num_epochs, worker_predicate,
                               max_ventilation_queue_size, seed):
            items = [{"piece_index": piece, "worker_predicate": worker_predicate,
                      "shuffle_row_drop_partition": (part, shuffle_row_drop_partitions)}
                     for piece in row_group_indexes
                     for part in range(shuffle_row_drop_partitions)]
            iterations = num_epochs
            if shuffle_row_groups and items:
                rng = np.random.default_rng(seed)
                passes = _PASSES_PLANNED if num_epochs is None else num_epochs
                items = [items[i] for _ in range(passes) for i in rng.permutation(len(items))]
                iterations = None if num_epochs is None else 1
            return ConcurrentVentilator(self._workers_pool.ventilate, items,
                                        iterations=iterations,
                                        max_ventilation_queue_size=max_ventilation_queue_size,
                                        randomize_item_order=False,
                                        ventilation_interval=_VENTILATION_WAIT_S)

    _FAST_CLASSES = (ReshufflingReader, FastArrowReaderWorker, QuietThreadPool)
    return _FAST_CLASSES


def _features_and_label(batch):
    return batch.features, batch.label
