"""How trials that run side by side reach their slots besides SparkTrials' job per trial
(driver side): ``executors`` — warm Spark tasks that train in-process trials
(:mod:`.executors`); ``driver`` — driver threads that launch multi-rank trials (:mod:`.driver`).
Both take the same arguments and keep the same take/give contract with the engine."""

from __future__ import annotations

import importlib
from typing import Any

RUNNERS = {
    "executors": "sparkdl_tune.search.runners.executors:ExecutorRunner",
    "driver": "sparkdl_tune.search.runners.driver:DriverRunner",
}


def make(kind: str, spark, parallelism: int, objective, server, take, give) -> Any:
    """The runner ``kind`` (a key of :data:`RUNNERS`), not started."""
    module, name = RUNNERS[kind].split(":")
    return getattr(importlib.import_module(module), name)(spark, parallelism, objective,
                                                          server, take, give)
