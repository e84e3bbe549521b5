"""The backend interface, and its one-process implementation (``num_proc == 1``).

Every engine's backend (:mod:`sparkdl_tune.spec.engines` names them) subclasses
:class:`Backend` and overrides what its engine does differently: how the rank joins the others
(``start``), where variables live (``scope``), the optimizer wrapping, the callbacks that keep
ranks in step, how ``fit`` gets its data (``distribute``), the collective questions ``any`` and
``from_root``, and which errors only say that another rank failed (``is_consequence``).
TensorFlow and pyspark are imported inside the methods.
"""

from __future__ import annotations

import contextlib
from typing import Any


class Backend:
    """One process: rank 0 of 1, nothing to agree on."""

    name = "single"
    rank, size = 0, 1
    announces = False  # print an ending marker (its launcher reads them out of the output)

    def assigned_gpus(self) -> list[str]:
        """The GPU addresses Spark gave this rank's task (before TensorFlow starts)."""
        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None and "gpu" in ctx.resources():
                return list(ctx.resources()["gpu"].addresses)
        except Exception:  # not inside a Spark task
            pass
        return []

    def start(self) -> None:
        """Join the other ranks (after the GPUs are pinned, before any other TensorFlow op)."""

    def scope(self):
        """Where the model and its optimizer are built (and rebuilt by unfreezing)."""
        return contextlib.nullcontext()

    def wrap_optimizer(self) -> Any:
        """The optimizer wrapper for :func:`sparkdl_tune.executor.models.build_model`."""
        return None

    def callbacks(self) -> list:
        return []

    def distribute(self, dataset, steps=None):
        """This rank's ``tf.data`` shard as ``fit`` should get it (``steps`` per pass, or
        None: a pass ends with the data)."""
        return dataset

    def any(self, tf, flag: bool, name: str) -> bool:
        """True when any rank passes True (every rank calls it, at the same point)."""
        return bool(flag)

    def from_root(self, tf, flag: bool, name: str) -> bool:
        """Rank 0's ``flag``, on every rank (every rank calls it, at the same point)."""
        return bool(flag)

    def local_model(self, tf, model):
        """``model`` as rank 0 alone may use it after ``fit`` (evaluate, predict)."""
        return model

    def finish(self, tf) -> None:
        """Every rank calls it last; a backend whose ranks must outlive rank 0's evaluation
        waits here."""

    def is_consequence(self, exc: BaseException) -> bool:
        """True when ``exc`` only says that another rank failed (see
        :mod:`sparkdl_tune.spec.outcome`)."""
        return False
