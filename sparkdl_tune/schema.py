"""The configuration tree: frozen dataclasses, one per YAML section.

Defaults here mirror ``defaults.yaml``; :mod:`sparkdl_tune.config` fills them from the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

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
    """A prepared dataset (see :mod:`sparkdl_tune.prepare`) and how training reads it."""

    path: str = "data/fashion-mnist"
    cache_url: Optional[str] = None
    feature_columns: Optional[tuple[str, ...]] = None


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
