"""The handle of a materialised dataset that training ranks read: file URLs, no rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional


@dataclass(frozen=True)
class SplitFiles:
    """One materialised split: its folder ``url``, its Parquet ``files`` (URLs, in order) and
    its ``rows``. Our own record rather than a reader library's handle, so any reader (see
    :mod:`sparkdl_tune.executor.readers`) can read it and the driver needs no reader library
    to build one."""

    url: str
    files: tuple[str, ...]
    rows: int

    def __post_init__(self):
        object.__setattr__(self, "files", tuple(self.files))

    def __add__(self, other: SplitFiles) -> SplitFiles:
        """Both splits' files and rows as one (train+validation for a final model); the folder
        stays this split's."""
        return SplitFiles(self.url, self.files + other.files, self.rows + other.rows)


@dataclass(frozen=True)
class TrainingData:
    """Picklable handle shipped to executors: the :class:`SplitFiles` of each split.

    The copy holds every feature column of the dataset (``feature_names``, in the order of
    the stored feature vector); a training on a subset of them (``data.feature_columns``, a
    fixed value or a subset dimension) reads that same copy and keeps ``columns``, the
    positions of its features, when building batches (:meth:`select`).
    """

    splits: dict  # split name -> SplitFiles
    input_dim: int
    num_classes: Optional[int]
    task: str
    feature_names: tuple = ()  # the named columns in the copy; () for an array column
    columns: Optional[tuple] = None  # positions kept in each feature vector; None: all
    class_names: tuple = ()  # class i's name when the dataset knows it (the test details)

    def rows(self, split: str) -> int:
        return self.splits[split].rows

    def select(self, names) -> TrainingData:
        """This data reduced to the named feature columns (kept in the copy's order)."""
        from ..errors import ConfigError

        if names is None:
            return self
        names = [names] if isinstance(names, str) else list(names)
        if not self.feature_names:
            raise ConfigError("data.feature_columns selects named columns, but this dataset "
                              "keeps its features in one array column; remove "
                              "data.feature_columns")
        unknown = [c for c in names if c not in self.feature_names]
        if unknown or not names:
            raise ConfigError(f"data.feature_columns {names}: {unknown or 'empty'} not among "
                              f"the dataset's features {list(self.feature_names)}; pick from "
                              "those")
        keep = tuple(i for i, c in enumerate(self.feature_names) if c in names)
        if len(keep) == len(self.feature_names):  # positions index the stored vector
            return replace(self, columns=None, input_dim=len(keep))
        return replace(self, columns=keep, input_dim=len(keep))
