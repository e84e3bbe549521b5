"""A prepared dataset: ``<root>/{train,validation,test}`` Parquet folders plus ``manifest.json``.

The layout says which columns hold the features (one fixed-length float array column, or named
numeric columns) and which the label, and what the task is. Driver side only.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..errors import DataError, public

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Layout:
    """Which columns are features and label, and what they mean.

    Attributes:
        task: ``classification`` (integer labels ``0..num_classes-1``) or ``regression``.
        features: The feature columns; with ``feature_kind == "array"`` exactly one column
            holding a fixed-length float array.
        label: The label column.
        feature_kind: ``array`` or ``columns``.
        num_classes: For classification; ``None`` means "infer from the data".
        class_names: For classification when the source knows them (Fashion-MNIST): the
            name of class ``i`` at position ``i``, so reports and summaries say "Sneaker",
            not "7"; ``None`` keeps the class ids.
    """

    task: str
    features: tuple[str, ...]
    label: str = "label"
    feature_kind: str = "columns"
    num_classes: Optional[int] = None
    class_names: Optional[tuple[str, ...]] = None

    def __post_init__(self):
        if self.task not in ("classification", "regression"):
            raise DataError(f"task {self.task!r} is not 'classification' or 'regression'")
        if not self.features:
            raise DataError("no feature columns given; name at least one with --features")
        if self.feature_kind == "array" and len(self.features) != 1:
            raise DataError("an array feature layout takes exactly one column")
        if self.label in self.features:
            raise DataError(f"column {self.label!r} is both a feature and the label; drop it "
                            "from --features")
        names = self.class_names
        if names is not None and (self.task != "classification" or len(set(names)) != len(names)
                                  or len(names) != (self.num_classes or len(names))):
            raise DataError(f"class_names {list(names)} do not fit a {self.task} task with "
                            f"{self.num_classes} classes; give one distinct name per class, "
                            "or none")

    @property
    def columns(self) -> list[str]:
        return [*self.features, self.label]


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds: enough to train without scanning the data again."""

    layout: Layout
    num_features: int
    rows: dict[str, int]
    schema: dict[str, str]
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    feature_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        if d["layout"]["class_names"] is None:  # as before names existed: the same text, so
            del d["layout"]["class_names"]     # the same materialised copy (its fingerprint)
        return json.dumps(d, indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        layout = dict(d["layout"])
        layout["features"] = tuple(layout["features"])
        if layout.get("class_names") is not None:  # absent in manifests written before
            layout["class_names"] = tuple(layout["class_names"])
        return cls(**{**d, "layout": Layout(**layout)})


@public
def read_manifest(root: str | os.PathLike) -> Manifest:
    """Read ``<root>/manifest.json``; a missing or broken manifest is a :class:`DataError`."""
    path = pathlib.Path(root) / MANIFEST
    if not path.is_file():
        raise DataError(f"{root} is not a prepared dataset ({MANIFEST} missing); "
                        "run 'sparkdl-tune prepare' first")
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); prepare the dataset again") from None


def split_path(root: str | os.PathLike, split: str) -> str:
    return str(pathlib.Path(root) / split)


@public
def read_split(spark, root: str | os.PathLike, split: str):
    """The split as a Spark DataFrame (lazy; nothing is collected)."""
    path = split_path(root, split)
    if not pathlib.Path(path).exists():
        raise DataError(f"split '{split}' is missing under {root}; prepare the dataset again")
    return spark.read.parquet(path)
