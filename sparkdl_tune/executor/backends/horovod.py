"""Horovod (Gloo) as the backend of a multi-rank training (see :mod:`.`)."""

from __future__ import annotations

from typing import Any

from . import Backend


class HorovodBackend(Backend):
    name = "horovod"

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
