"""Row-group readers: this rank's shard of a split's Parquet files as ``tf.data`` of numpy
``(features, label)`` row groups, sharded by row group, in a new order each pass when shuffled.

A reader is a class ``Reader(urls, *, workers, shuffle, seed, num_epochs, cur_shard,
shard_count)`` with ``.dataset()`` (the ``tf.data.Dataset``; each iteration of it reads
``num_epochs`` passes, endless when None) and ``.close()``;
:class:`sparkdl_tune.executor.stream.stream` caches, selects feature columns, shuffles rows and
batches whatever it delivers. ``data.reader`` names one of
:data:`sparkdl_tune.spec.readers.READERS`: a new reader is one module in this folder plus one
line there (``tests/test_readers.py`` holds it so). No import here but the chosen reader's own
module, on first use. Executor side.
"""

from __future__ import annotations

import importlib

from ...spec.readers import OPTIONS, READERS  # noqa: F401 (the readers' interface)


def reader_class(name: str) -> type:
    """The class registered as ``name`` (imported now)."""
    if name not in READERS:
        raise ValueError(f"unknown reader {name!r}; the readers are: {', '.join(READERS)}")
    module, _, cls = READERS[name].cls.partition(":")
    return getattr(importlib.import_module(module), cls)


def make_reader(urls: list[str], *, name: str = "petastorm", **options):
    """A reader ``name`` over ``urls`` with ``options`` (see :data:`OPTIONS`)."""
    return reader_class(name)(urls, **options)
