"""The job one training ships to its ranks, and what each rank reports back about itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..config.model_spec import ModelSpec, TrainingSpec
from .data import TrainingData
from .report import ReportTo


@dataclass(frozen=True)
class TrainJob:
    """Everything a rank needs, picklable and small (the data travels as file URLs)."""

    model: ModelSpec
    training: TrainingSpec
    data: TrainingData
    num_proc: int = 1
    backend: str = "horovod"  # the engine of num_proc > 1 (sparkdl_tune.spec.engines)
    scale_learning_rate: bool = True
    threads: int = 2
    seed: int = 42
    reader: str = "petastorm"  # data.reader: a name in spec.readers.READERS
    reader_workers: int = 2
    shuffle: bool = True
    in_memory_cache: str = "auto"
    cache_max_mb: int = 2048
    in_process: bool = True
    verbose: int = 2
    report_to: Optional[ReportTo] = None  # a trial's per-epoch reports go to the driver
    test: bool = True  # evaluate on the test split at the end (a search trial: when asked)
    weights: bool = True  # ship the trained weights back (a search trial's: nobody reads them)


@dataclass
class RankReport:
    """What each rank saw: for logs and for checking GPU assignment."""

    rank: int
    size: int
    host: str
    pid: int
    gpus: list[str] = field(default_factory=list)
    cuda_visible_devices: Optional[str] = None
    cached_in_memory: bool = False
