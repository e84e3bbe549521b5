"""Executor side: one rank's shard of one split, from a row-group reader into ``tf.data``.

:class:`stream` is what :func:`sparkdl_tune.executor.worker.run` trains, validates and tests on:
caching, shuffling and batching, whatever the reader. No pyspark import; the reader and
TensorFlow are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec.job import TrainJob


class stream:
    """Context manager: this rank's shard of one split as ``tf.data`` of (x, y) batches.

    The reader the job names (:mod:`sparkdl_tune.executor.readers`: Petastorm or Arrow)
    delivers this rank's whole row groups as numpy, in a new order every pass. In ``tf.data``
    each row group's rows are permuted (``tf.gather``) and ``rebatch`` re-cuts the groups to
    the batch size, all in C++. When the shard fits the memory budget the decoded row groups
    are cached during the first pass; later passes reshuffle the cached groups and their rows.

    The training stream is endless (``fit`` counts steps). ``finite``: one pass, no cache
    (the test split). ``per_pass`` (the validation split): Keras starts a new iterator for
    every evaluation, so each iteration is one whole pass over the shard, every row once; the
    first fills the cache when it is on, later ones read it (without the cache the reader is
    reset and reads the Parquet again). With the warm data cache on (``search.runner:
    executors``, :mod:`.data_cache`) every split that fits the budget is decoded once per
    worker and later trials stream it from memory.
    """

    def __init__(self, job: TrainJob, split: str, rank: int, size: int, finite: bool = False,
                 per_pass: bool = False):
        self.job, self.split, self.rank, self.size, self.finite = job, split, rank, size, finite
        self.per_pass = per_pass

    def __enter__(self):
        import tensorflow as tf

        from . import data_cache

        job = self.job
        files = job.data.splits[self.split]
        shard_bytes = files.rows / self.size * (job.data.input_dim + 1) * 4
        cached = not self.finite and _use_memory_cache(job, shard_bytes)
        shuffle = job.shuffle and self.split == "train"
        seed = job.seed + self.rank
        self.reader = None
        ds = self._from_memory(files, shuffle, seed, shard_bytes) \
            if data_cache.enabled() else None
        if ds is not None:
            cached = not self.finite
        else:
            data_cache.read_parquet()
            self.reader = self._open(files, shuffle, seed if shuffle else None,
                                     1 if (cached or self.finite or self.per_pass) else None)
            ds = self.reader.dataset()
        if getattr(job.data, "columns", None) is not None:
            ds = ds.map(_columns(job.data.columns))  # this training's features, from the copy
        if cached and self.reader is not None:
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

    def _open(self, files, shuffle: bool, seed, num_epochs):
        """The job's reader over this rank's shard of ``files``."""
        from .readers import make_reader

        job = self.job
        return make_reader(list(files.files), name=job.reader, workers=job.reader_workers,
                           shuffle=shuffle, seed=seed, num_epochs=num_epochs,
                           cur_shard=self.rank if self.size > 1 else None,
                           shard_count=self.size if self.size > 1 else None)

    def _from_memory(self, files, shuffle: bool, seed: int, shard_bytes: float):
        """With the warm data cache on (:mod:`.data_cache`): this shard from memory, decoded
        from Parquet in one pass first when no earlier trial on this worker kept it; None
        when it does not fit the memory budget."""
        from . import data_cache

        job = self.job
        if not _use_memory_cache(job, shard_bytes):
            return None
        key = data_cache.key_of(files.files, self.rank, self.size)
        groups = data_cache.get(key)
        if groups is None:
            data_cache.read_parquet()
            reader = self._open(files, False, None, 1)
            try:
                groups = list(reader.dataset().as_numpy_iterator())
            finally:
                reader.close()
            if not groups:
                return None
            data_cache.put(key, groups, job.cache_max_mb * 2**20)
        return data_cache.dataset(groups, shuffle=shuffle, seed=seed,
                                  repeat=not (self.finite or self.per_pass))

    def __exit__(self, *exc):
        if self.reader is not None:
            self.reader.close()


_ALL_GROUPS = 1_000_000  # a shuffle buffer larger than any cached shard's row-group count
def _permute_rows(x, y):
    import tensorflow as tf

    idx = tf.random.shuffle(tf.range(tf.shape(y)[0]))
    return tf.gather(x, idx), tf.gather(y, idx)


def _columns(positions):
    """A ``tf.data`` map keeping the feature columns at ``positions`` of each row group."""
    import tensorflow as tf

    keep = tf.constant(list(positions), dtype=tf.int32)

    def pick(x, y):
        return tf.gather(x, keep, axis=1), y

    return pick


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
