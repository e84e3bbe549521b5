"""Horovod (Gloo) as the backend of a multi-rank training (see :mod:`.single` for the
interface). The only executor module that imports Horovod."""

from __future__ import annotations

import re
from typing import Any

from .single import Backend

# Errors a rank gets because another rank went away, not because of anything it did.
CONSEQUENCE = re.compile(
    r"Horovod has been shut down|HorovodInternalError|HostsUpdatedInterrupt|"
    r"Connection (closed|reset) by peer|Broken pipe|gloo", re.IGNORECASE)


class HorovodBackend(Backend):
    name = "horovod"
    announces = True  # horovod.spark names a race's winner: the markers name the culprit

    def assigned_gpus(self) -> list[str]:
        """What ``horovod.spark`` passed from the Spark task (its ranks run in a process of
        their own, where the task's context is not at hand)."""
        try:
            from horovod.spark.task import get_available_devices

            gpus = list(get_available_devices())
        except Exception:  # not inside a horovod.spark task
            gpus = []
        return gpus or super().assigned_gpus()

    def start(self) -> None:
        import horovod.tensorflow.keras as hvd

        hvd.init()
        self.hvd = hvd
        self.rank, self.size = hvd.rank(), hvd.size()

    def wrap_optimizer(self) -> Any:
        return self.hvd.DistributedOptimizer

    def callbacks(self) -> list:
        return [self.hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                self.hvd.callbacks.MetricAverageCallback()]

    def any(self, tf, flag: bool, name: str) -> bool:
        return float(self.hvd.allreduce(tf.constant(float(flag)), name=name)) > 0

    def from_root(self, tf, flag: bool, name: str) -> bool:
        return float(self.hvd.broadcast(tf.constant(float(flag)), root_rank=0, name=name)) > 0

    def is_consequence(self, exc: BaseException) -> bool:
        return bool(CONSEQUENCE.search(f"{type(exc).__name__}: {exc}"))
