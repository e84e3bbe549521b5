"""Distributed-training backends: what a rank needs from the engine that joins the ranks.

A backend gives the rank and size, wraps the optimizer, adds the callbacks that keep ranks in
step (start from rank 0's weights, average epoch metrics), and answers collective questions
(:meth:`Backend.any` — does any rank want to stop? — and :meth:`Backend.from_root` — what does
rank 0 say?). ``single`` is one process; ``horovod`` is Horovod over Gloo. A second engine
(e.g. TensorFlow's MultiWorkerMirroredStrategy) is one more module here. Executor side:
TensorFlow and Horovod are imported inside the methods. :func:`pin_assigned_gpus` runs before
either starts: a rank sees only the GPUs Spark gave its task.
"""

from __future__ import annotations

import os
from typing import Any


class Backend:
    """One process: rank 0 of 1, nothing to agree on."""

    name = "single"
    rank, size = 0, 1

    def start(self) -> None:
        pass

    def wrap_optimizer(self) -> Any:
        """The optimizer wrapper for :func:`sparkdl_tune.executor.models.build_model`."""
        return None

    def callbacks(self) -> list:
        return []

    def any(self, tf, flag: bool, name: str) -> bool:
        """True when any rank passes True (every rank calls it, at the same point)."""
        return bool(flag)

    def from_root(self, tf, flag: bool, name: str) -> bool:
        """Rank 0's ``flag``, on every rank (every rank calls it, at the same point)."""
        return bool(flag)


def pin_assigned_gpus() -> list[str]:
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


def make_backend(num_proc: int) -> Backend:
    if num_proc <= 1:
        return Backend()
    from .horovod import HorovodBackend

    return HorovodBackend()
