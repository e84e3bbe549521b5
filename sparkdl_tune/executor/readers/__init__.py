"""Row-group readers: this rank's shard of a split's Parquet files as ``tf.data`` of numpy
``(features, label)`` row groups, sharded by row group, in a new order each pass when shuffled.

A reader is ``make_reader(urls, workers=, shuffle=, seed=, num_epochs=, cur_shard=,
shard_count=)`` with ``.dataset()`` and ``.close()``; :class:`sparkdl_tune.executor.stream.stream`
caches, shuffles rows and batches whatever it delivers. ``petastorm`` is the one today; a second
(e.g. pyarrow's own dataset scanner) is one more module here. Executor side.
"""

from __future__ import annotations


def make_reader(urls: list[str], *, name: str = "petastorm", **options):
    if name != "petastorm":
        raise ValueError(f"unknown reader {name!r}; the readers are: petastorm")
    from .petastorm import PetastormReader

    return PetastormReader(urls, **options)
