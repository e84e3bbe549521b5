"""The handle of a materialised dataset that training ranks read: file URLs, no rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class TrainingData:
    """Picklable handle shipped to executors: one Petastorm converter per split."""

    converters: dict  # split -> petastorm SparkDatasetConverter
    input_dim: int
    num_classes: Optional[int]
    task: str

    def rows(self, split: str) -> int:
        return len(self.converters[split])
