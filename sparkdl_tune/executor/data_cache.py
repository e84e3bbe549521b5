"""Executor side: decoded row groups kept in this Python worker from one trial to the next.

Only with ``search.runner: executors``, where one worker runs trial after trial:
:mod:`.trial_loop` turns it on for the life of a slot's task (off, and emptied, when the task
ends). :class:`~sparkdl_tune.executor.stream.stream` then keeps each split's shard it decodes
(keyed by the split's file URLs and the shard) and the next trial on this worker streams it
from memory instead of reading the Parquet again. Bounded: the least
recently used shards go first once the total passes the job's ``data.cache_max_mb``, and at
most :data:`MAX_SHARDS` are kept (two datasets' train, validation and test). The counts say
where each trial's data came from. No pyspark; numpy and TensorFlow only inside functions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional

MAX_SHARDS = 6

_state: dict[str, Any] = {"enabled": False, "bytes": 0}
_shards: OrderedDict[tuple, tuple[list, int]] = OrderedDict()
_counts = {"parquet": 0, "cache": 0}


def enable() -> None:
    _state["enabled"] = True


def disable() -> None:
    """Off, and the kept shards dropped (the slot's task ended; the worker may run others)."""
    _state["enabled"] = False
    clear()


def enabled() -> bool:
    return bool(_state["enabled"])


def key_of(urls, rank: int, size: int) -> tuple:
    return (tuple(urls), rank, size)


def get(key: tuple) -> Optional[list]:
    """The cached row groups of ``key`` (counted as a cache read), or None."""
    found = _shards.get(key)
    if found is None:
        return None
    _shards.move_to_end(key)
    _counts["cache"] += 1
    return found[0]


def read_parquet() -> None:
    """Count one shard read from Parquet (every reader the stream opens)."""
    _counts["parquet"] += 1


def put(key: tuple, groups: list, budget_bytes: float) -> None:
    """Keep ``groups`` (``(x, y)`` numpy pairs) under ``key``, dropping the oldest shards to
    stay within ``budget_bytes`` and :data:`MAX_SHARDS`; a shard above the budget is not kept."""
    size = sum(x.nbytes + y.nbytes for x, y in groups)
    if size > budget_bytes:
        return
    _shards[key] = (groups, size)
    _state["bytes"] += size
    while _shards and (_state["bytes"] > budget_bytes or len(_shards) > MAX_SHARDS):
        _, (_, dropped) = _shards.popitem(last=False)
        _state["bytes"] -= dropped


def counts() -> dict[str, int]:
    return dict(_counts)


def source_since(before: dict[str, int]) -> Optional[str]:
    """``parquet`` when a shard was read from Parquet since ``before`` (:func:`counts`),
    ``cache`` when all came from memory, None when no data was read."""
    if _counts["parquet"] > before["parquet"]:
        return "parquet"
    return "cache" if _counts["cache"] > before["cache"] else None


def dataset(groups: list, *, shuffle: bool, seed: int, repeat: bool):
    """``tf.data`` of the cached row groups: each iteration one pass (endless with
    ``repeat``), in a new seeded group order per pass when shuffled."""
    import numpy as np
    import tensorflow as tf

    x0, y0 = groups[0]
    signature = (tf.TensorSpec((None, *x0.shape[1:]), tf.as_dtype(x0.dtype)),
                 tf.TensorSpec((None, *y0.shape[1:]), tf.as_dtype(y0.dtype)))
    rng = np.random.default_rng(seed)

    def passes():
        while True:
            yield from (groups[i] for i in (rng.permutation(len(groups)) if shuffle
                                             else range(len(groups))))
            if not repeat:
                return

    return tf.data.Dataset.from_generator(passes, output_signature=signature)


def clear() -> None:
    _shards.clear()
    _state["bytes"] = 0
