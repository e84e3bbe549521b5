"""The configuration tree: frozen dataclasses, one per YAML section.

Defaults here mirror ``defaults.yaml``; :mod:`sparkdl_tune.config` fills them from the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from .model_spec import ModelSpec, TrainingSpec


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs. ``master: null`` keeps what spark-submit set, else ``local[*]``."""

    master: Optional[str] = None
    app_name: str = "sparkdl-tune"
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSettings:
    """A prepared dataset (see :mod:`sparkdl_tune.prepare`) and how training reads it.

    ``cache_url`` is where Petastorm's materialised copy lives (default ``.cache/petastorm``
    under the working directory; on a cluster a shared URL such as ``dbfs:/tmp/...``).
    ``feature_columns`` picks a subset of named feature columns (a search dimension).
    ``in_memory_cache``: ``auto`` keeps decoded batches in memory when the rank's shard fits
    in ``cache_max_mb``; ``off`` always streams from Parquet.
    """

    path: str = "data/fashion-mnist"
    cache_url: Optional[str] = None
    feature_columns: Optional[tuple[str, ...]] = None
    reader_workers: int = 2
    row_group_mb: int = 4
    shuffle: bool = True
    in_memory_cache: Literal["auto", "on", "off"] = "auto"
    cache_max_mb: int = 2048

    def __post_init__(self):
        if self.reader_workers < 1 or self.row_group_mb < 1 or self.cache_max_mb < 0:
            raise ValueError("reader_workers and row_group_mb must be >= 1, cache_max_mb >= 0")


@dataclass(frozen=True)
class ExecutionSettings:
    """Where a training runs: ``num_proc: 1`` in-process, ``N`` a Horovod job on N tasks.

    ``scale_learning_rate`` multiplies the learning rate by the number of ranks (the usual
    Horovod rule for a global batch ``N`` times larger). ``threads_per_proc`` caps
    TensorFlow's threads per rank (default: the host's cores shared among its ranks).
    """

    num_proc: int = 1
    scale_learning_rate: bool = True
    threads_per_proc: Optional[int] = None
    seed: int = 42
    start_timeout: int = 120

    def __post_init__(self):
        if self.num_proc < 1:
            raise ValueError(f"num_proc is {self.num_proc}; use 1 (in-process) or more")


@dataclass(frozen=True)
class MlflowSettings:
    """Tracking store and naming; ``tracking_uri: null`` uses MLFLOW_TRACKING_URI or ./mlruns."""

    tracking_uri: Optional[str] = None
    experiment: str = "sparkdl-tune"
    registered_model_name: Optional[str] = None


@dataclass(frozen=True)
class Config:
    """The whole job configuration."""

    spark: SparkSettings = field(default_factory=SparkSettings)
    data: DataSettings = field(default_factory=DataSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
