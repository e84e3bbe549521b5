"""Executor side: one training, on one rank. No pyspark import; TensorFlow only inside ``run``.

``run(job)`` is what ``horovod.spark.run`` ships to every Spark task (or what the driver calls
in-process when ``num_proc == 1``): pin the GPU Spark assigned, start Horovod, stream this rank's
shard from Petastorm into ``tf.data``, fit, evaluate on ``test`` (rank 0), and hand back plain
data. Only rank 0 returns a :class:`TrainResult`; every rank returns a :class:`RankReport`.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .data import TrainingData
from .model_spec import ModelSpec, TrainingSpec
from .result import TrainResult


@dataclass(frozen=True)
class TrainJob:
    """Everything a rank needs, picklable and small (the data travels as file URLs)."""

    model: ModelSpec
    training: TrainingSpec
    data: TrainingData
    num_proc: int = 1
    scale_learning_rate: bool = True
    threads: int = 2
    seed: int = 42
    reader_workers: int = 2
    shuffle: bool = True
    in_memory_cache: str = "auto"
    cache_max_mb: int = 2048
    in_process: bool = True
    verbose: int = 2


@dataclass
class RankReport:
    """What each rank saw: for logs and for checking GPU assignment."""

    rank: int
    size: int
    host: str
    pid: int
    gpus: list[str] = field(default_factory=list)
    cuda_visible_devices: Optional[str] = None
    cached_in_memory: bool = False


def run(job: TrainJob) -> tuple[RankReport, Optional[TrainResult]]:
    """Train on this rank; see the module docstring."""
    gpus = [] if job.in_process else _pin_assigned_gpus()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from . import logs

    logs.quiet_libraries()
    import tensorflow as tf

    _set_threads(tf, job.threads)
    hvd = None
    rank, size = 0, 1
    if job.num_proc > 1:
        import horovod.tensorflow.keras as hvd

        hvd.init()
        rank, size = hvd.rank(), hvd.size()
    report = RankReport(rank=rank, size=size, host=socket.gethostname(), pid=os.getpid(),
                        gpus=gpus, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    tf.keras.utils.set_random_seed(job.seed + rank)

    from .models import build_model, make_callbacks

    training = job.training
    lr = training.learning_rate * (size if job.scale_learning_rate else 1)
    train_rows = job.data.rows("train")
    steps = max(1, train_rows // (training.batch_size * size))
    model = build_model(job.model, training, job.data.input_dim, job.data.num_classes,
                        learning_rate=lr, seed=job.seed,
                        wrap_optimizer=hvd.DistributedOptimizer if hvd else None,
                        total_steps=steps * training.epochs)
    timer = _EpochTimer(tf)
    callbacks: list[Any] = []
    if hvd:
        callbacks += [hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                      hvd.callbacks.MetricAverageCallback()]
    callbacks += [timer, tf.keras.callbacks.TerminateOnNaN(), *make_callbacks(training)]
    if training.time_limit_minutes:
        callbacks.append(_TimeLimit(tf, training.time_limit_minutes * 60, timer, hvd))

    started = time.monotonic()
    with _stream(job, "train", rank, size) as (train_ds, cached), \
            _stream(job, "validation", rank, size, per_pass=True) as (val_ds, _):
        report.cached_in_memory = cached
        history = model.fit(train_ds, epochs=training.epochs, steps_per_epoch=steps,
                            validation_data=val_ds,
                            callbacks=callbacks, verbose=job.verbose if rank == 0 else 0)
    if rank != 0:
        return report, None
    with _stream(job, "test", 0, 1, finite=True) as (test_ds, _):
        scores = model.evaluate(test_ds, verbose=0, return_dict=True)
    wall = time.monotonic() - started
    per_epoch = timer.seconds[1:] or timer.seconds
    samples = steps * training.batch_size * size
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return report, TrainResult(
        history=hist,
        test_metrics={f"test_{k}": float(v) for k, v in scores.items()},
        epochs_run=len(timer.seconds),
        wall_seconds=wall,
        samples_per_second=samples / (sum(per_epoch) / len(per_epoch)) if per_epoch else 0.0,
        num_proc=size,
        learning_rate=lr,
        input_dim=job.data.input_dim,
        model_json=model.to_json(),
        weights=model.get_weights(),
        extra={"epoch_seconds": timer.seconds, "threads_per_proc": job.threads,
               "nan_loss": not all(math.isfinite(v) for v in hist.get("loss", [])),
               "cached_in_memory": cached},
    )


class _stream:
    """Context manager: this rank's shard of one split as ``tf.data`` of (x, y) batches.

    Petastorm's reader (ventilator, thread pool, sharding by row group) delivers whole row
    groups, in a new order every pass; its worker here (:func:`_fast_classes`) decodes a row
    group into numpy without per-row Python work. In ``tf.data`` each row group's rows are
    permuted (``tf.gather``) and ``rebatch`` re-cuts the groups to the batch size, all in C++.
    When the shard fits the memory budget the decoded row groups are cached during the first
    pass; later passes reshuffle the cached groups and their rows.

    The training stream is endless (``fit`` counts steps). ``finite``: one pass, no cache
    (the test split). ``per_pass`` (the validation split): Keras starts a new iterator for
    every evaluation, so each iteration is one whole pass over the shard, every row once; the
    first fills the cache when it is on, later ones read it (without the cache the reader is
    reset and reads the Parquet again).
    """

    def __init__(self, job: TrainJob, split: str, rank: int, size: int, finite: bool = False,
                 per_pass: bool = False):
        self.job, self.split, self.rank, self.size, self.finite = job, split, rank, size, finite
        self.per_pass = per_pass

    def __enter__(self):
        import tensorflow as tf
        from petastorm.tf_utils import make_petastorm_dataset

        job = self.job
        converter = job.data.converters[self.split]
        shard_bytes = len(converter) / self.size * (job.data.input_dim + 1) * 4
        cached = not self.finite and _use_memory_cache(job, shard_bytes)
        shuffle = job.shuffle and self.split == "train"
        seed = job.seed + self.rank
        self.reader = _make_reader(
            converter.file_urls, workers=job.reader_workers, shuffle=shuffle,
            seed=seed if shuffle else None,
            num_epochs=1 if (cached or self.finite or self.per_pass) else None,
            cur_shard=self.rank if self.size > 1 else None,
            shard_count=self.size if self.size > 1 else None)
        ds = make_petastorm_dataset(self.reader).map(
            tf.autograph.experimental.do_not_convert(_features_and_label))
        if cached:
            ds = ds.cache()
            if shuffle:  # pass 1 as read (already in a random group order), then reshuffled
                # cached groups; the buffer only holds references, and every group fits
                ds = ds.concatenate(ds.shuffle(_ALL_GROUPS, seed=seed).repeat())
            elif not self.per_pass:
                ds = ds.repeat()
        if shuffle:  # one row group at a time is enough; a parallel map costs more CPU
            ds = ds.map(_permute_rows)
        ds = ds.rebatch(job.training.batch_size).prefetch(tf.data.AUTOTUNE)
        return ds, cached

    def __exit__(self, *exc):
        self.reader.stop()
        self.reader.join()


_ALL_GROUPS = 1_000_000  # a shuffle buffer larger than any cached shard's row-group count
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
    Rows within a row group come in stored order: :func:`_permute_rows` shuffles them.
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

        from . import logs

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
                values = _column_as_numpy(table.column(name))
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


def _column_as_numpy(column):
    """A numeric column as a numpy vector, a fixed-length numeric list column as a matrix
    (both without copying where Arrow allows); None for anything else."""
    import numpy as np
    import pyarrow as pa

    arr = column.chunks[0] if column.num_chunks == 1 else column.combine_chunks()
    if arr.null_count or len(arr) == 0:
        return None
    kind = arr.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return arr.to_numpy(zero_copy_only=False)
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return None
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        return None
    offsets = arr.offsets.to_numpy()
    width = int(offsets[1] - offsets[0])
    if not (np.diff(offsets) == width).all():
        return None
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    if values.null_count:
        return None
    return values.to_numpy(zero_copy_only=False).reshape(len(arr), width)


def _features_and_label(batch):
    return batch.features, batch.label


def _permute_rows(x, y):
    import tensorflow as tf

    idx = tf.random.shuffle(tf.range(tf.shape(y)[0]))
    return tf.gather(x, idx), tf.gather(y, idx)


def _use_memory_cache(job: TrainJob, shard_bytes: float) -> bool:
    if job.in_memory_cache == "off":
        return False
    if job.in_memory_cache == "on":
        return True
    budget = job.cache_max_mb * 2**20
    try:
        import psutil

        budget = min(budget, psutil.virtual_memory().available / 4 / max(1, job.num_proc))
    except ImportError:
        pass
    return shard_bytes <= budget


class _EpochTimer:
    """A Keras callback recording each epoch's wall time (built lazily: no TF at import)."""

    def __new__(cls, tf):
        class Timer(tf.keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.monotonic() - self._t)

        return Timer()


class _TimeLimit:
    """A Keras callback ending ``fit`` after the epoch that leaves less time than the longest
    epoch so far took (built lazily: no TF at import). Under Horovod every rank takes the
    same decision (stop when any rank asks: the mean of their wishes is above 0), so no rank
    waits on a stopped one.
    """

    def __new__(cls, tf, seconds: float, timer, hvd=None):
        class TimeLimit(tf.keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self._started = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                left = seconds - (time.monotonic() - self._started)
                stop = float(left < max(timer.seconds, default=0.0))
                if hvd is not None:
                    stop = float(hvd.allreduce(tf.constant(stop), name="time_limit"))
                if stop > 0:
                    self.model.stop_training = True
                    self.stopped_epoch = epoch + 1

        return TimeLimit()


def _set_threads(tf, threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process (in-process runs)
        pass


def _pin_assigned_gpus() -> list[str]:
    """Make only the GPUs Spark assigned to this task visible, before TensorFlow starts."""
    gpus: list[str] = []
    try:
        from horovod.spark.task import get_available_devices

        gpus = list(get_available_devices())
    except Exception:  # not inside a horovod.spark task
        gpus = []
    if not gpus:
        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None and "gpu" in ctx.resources():
                gpus = list(ctx.resources()["gpu"].addresses)
        except Exception:
            gpus = []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return gpus
