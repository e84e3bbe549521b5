"""One trial as the search, resume and the report see it: a plain record, no engine's documents.

The monitor (:mod:`sparkdl_tune.search.monitor`) makes one when a trial ends, resume
(:mod:`sparkdl_tune.tracking.resume`) makes them again from the MLflow runs, and the final
retrain reads the best. Nothing here imports TensorFlow, pyspark, mlflow or an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# kept per trial; train_seconds: fit and test, so trial_seconds minus it is the launch and the
# rest; launch: the warm ranks' stage that trained it (sparkdl_tune.driver.launch.warm)
THROUGHPUT_KEYS = ("samples_per_second", "num_proc", "threads_per_proc", "train_seconds",
                   "launch")
# what a trial measures of its network besides the metric, with its unit: the second
# objective of a Pareto search (sparkdl_tune.search.pareto) and a column of the report
MEASURES = {"params": "parameters", "epoch_seconds": "seconds per epoch",
            "latency_ms": "ms per row predicted"}
COMPLEXITY_KEYS = tuple(MEASURES)
KEPT_KEYS = THROUGHPUT_KEYS + COMPLEXITY_KEYS  # logged as metrics, read back on resume


@dataclass
class TrialRecord:
    """One finished trial, as the monitor and the resume logic see it."""

    number: int
    ok: bool
    vals: dict[str, list]
    params: dict[str, Any]
    loss: Optional[float] = None
    score: Optional[float] = None
    failure: Optional[str] = None
    duration: float = 0.0
    start: float = 0.0
    epochs_run: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    run_id: Optional[str] = None
    where: str = ""
    cancelled: bool = False
    key: str = ""  # the trial's report key (see sparkdl_tune.search.live)
    pruned_epoch: Optional[int] = None  # stopped by the scheduler after this epoch
    pruned_reason: str = ""
    curve: list[Optional[float]] = field(default_factory=list)  # the metric after each epoch
    rung: Optional[int] = None  # the highest scheduler rung (epochs) it reached
    logged: dict[str, int] = field(default_factory=dict, repr=False)  # epochs already in MLflow
    objectives: Optional[list[float]] = None  # [metric as a loss, second] (search.objectives)
    folds: list[dict] = field(default_factory=list)  # search.cv_folds: per fold (search.folds)
    data_source: str = ""  # runner executors: "cache" (decoded by an earlier trial) | "parquet"

    @property
    def status(self) -> str:
        """finished | pruned | failed | cancelled"""
        if self.cancelled:
            return "cancelled"
        if not self.ok:
            return "failed"
        return "pruned" if self.pruned_epoch else "finished"
