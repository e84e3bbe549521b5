"""Fashion-MNIST IDX files -> train/validation/test DataFrames, rows made on the executors.

The driver sends each task only a (file, start, stop) range; the task reads those rows of the
IDX file itself. The folder must therefore be readable from every executor (a local path in
local mode, ``/dbfs/...`` on Databricks, a shared mount on a cluster).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Optional

from ...errors import DataError
from ..dataset import Layout
from .splits import check_fractions

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SCHEMA = "features array<float>, label int"
# label i of the IDX files (Zalando's list, github.com/zalandoresearch/fashion-mnist)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
ROWS_PER_TASK = 7_500


@dataclass(frozen=True)
class FashionMnistSource:
    """The four IDX files; validation is a stratified, seeded holdout of the train file.

    ``classes`` keeps only those classes, relabelled 0, 1, ... in the order given (e.g. 5..9
    for a transfer-learning target); ``train_fraction`` keeps a stratified, seeded share of the
    train file (validation is carved from that share), the test file stays whole.
    """

    directory: str = DEFAULT_DIR
    validation_fraction: float = 0.1
    seed: int = 42
    classes: Optional[tuple[int, ...]] = None
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.classes is not None:
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2 or \
                    not all(0 <= c <= 9 for c in self.classes):
                raise DataError(f"--classes {','.join(map(str, self.classes))}: give at least "
                                "two different Fashion-MNIST classes from 0 to 9, e.g. 5,6,7,8,9")
        if not 0.0 < self.train_fraction <= 1.0:
            raise DataError(f"--train-fraction is {self.train_fraction}; use a share in (0, 1], "
                            "e.g. 0.1")

    def layout(self, spark=None) -> Layout:
        kept = self.classes or range(10)  # relabelled 0, 1, ... in this order
        return Layout(task="classification", features=("features",), label="label",
                      feature_kind="array", num_classes=len(kept),
                      class_names=tuple(CLASS_NAMES[c] for c in kept))

    def files(self) -> dict[str, tuple[str, str]]:
        """Resolve each IDX file, gzipped or not; a missing one is a DataError."""
        if not os.path.isdir(self.directory):
            raise DataError(f"Fashion-MNIST folder {self.directory} does not exist; install "
                            "it with 'apt-get install dataset-fashion-mnist' or pass --source")
        found = {}
        for split, names in FILES.items():
            paths = []
            for name in names:
                hits = sorted(glob.glob(os.path.join(self.directory, name + "*")))
                if not hits:
                    raise DataError(f"{self.directory} has no {name}[.gz]; point --source at "
                                    "the folder holding the four Fashion-MNIST IDX files")
                paths.append(os.path.abspath(hits[0]))
            found[split] = tuple(paths)
        return found

    def splits(self, spark) -> dict:
        from .idx import read_header

        check_fractions(self.validation_fraction, 0.0)
        out = {}
        for file_split, (images, labels) in self.files().items():
            try:
                n_images = read_header(images)[0][0]
                n_labels = read_header(labels)[0][0]
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read {images}: {exc}; reinstall the dataset") from None
            if n_images != n_labels:
                raise DataError(f"{images} has {n_images} images but {labels} has {n_labels} "
                                "labels; the files do not belong together")
            parts = _ranges(n_images)
            if file_split == "train":
                for split in ("train", "validation"):
                    out[split] = _frame(spark, parts, images, labels, split,
                                        self.validation_fraction, self.seed, self.classes,
                                        self.train_fraction)
            else:
                out["test"] = _frame(spark, parts, images, labels, "all", 0.0, self.seed,
                                     self.classes)
        return out

    def describe(self) -> dict:
        return {"kind": "fashion-mnist", "directory": self.directory,
                "validation_fraction": self.validation_fraction, "seed": self.seed,
                **({"classes": list(self.classes)} if self.classes else {}),
                **({"train_fraction": self.train_fraction} if self.train_fraction < 1 else {})}


def _ranges(n: int) -> list[tuple[int, int]]:
    return [(s, min(s + ROWS_PER_TASK, n)) for s in range(0, n, ROWS_PER_TASK)]


def _frame(spark, parts, images: str, labels: str, keep: str, fraction: float, seed: int,
           classes=None, share: float = 1.0):
    ranges = spark.createDataFrame(parts, "start long, stop long").repartition(len(parts))
    return ranges.mapInArrow(_rows_reader(images, labels, keep, fraction, seed, classes, share),
                             SCHEMA)


def _rows_reader(images: str, labels: str, keep: str, fraction: float, seed: int,
                 classes=None, share: float = 1.0):
    """The function each task runs: emit the rows of its ranges that belong to ``keep`` (of
    ``classes``, relabelled by their position; of a ``share`` of the file)."""

    def read(batches):
        import numpy as np
        import pyarrow as pa

        from .idx import read_rows
        from .splits import stratified_holdout

        all_labels = read_rows(labels)
        if keep == "all":
            mask = np.ones(len(all_labels), dtype=bool)
        else:
            held = stratified_holdout(all_labels, fraction, seed)
            mask = held if keep == "validation" else ~held
        if share < 1.0:
            mask &= stratified_holdout(all_labels, share, seed + 1)
        new_labels = all_labels
        if classes:
            mask &= np.isin(all_labels, classes)
            new_labels = np.full(all_labels.shape, -1, dtype=np.int64)
            for i, c in enumerate(classes):
                new_labels[all_labels == c] = i
        for batch in batches:
            for start, stop in zip(batch.column("start").to_pylist(),
                                   batch.column("stop").to_pylist()):
                rows = mask[start:stop]
                x = read_rows(images, start, stop)[rows].astype(np.float32) / np.float32(255.0)
                width = x.shape[1]
                offsets = np.arange(0, (len(x) + 1) * width, width, dtype=np.int32)
                feats = pa.ListArray.from_arrays(pa.array(offsets),
                                                 pa.array(x.ravel(), pa.float32()))
                y = pa.array(new_labels[start:stop][rows].astype(np.int32))
                yield pa.RecordBatch.from_arrays([feats, y], names=["features", "label"])

    return read
