"""Sources that ``prepare`` turns into a prepared dataset.

Each source is a small frozen dataclass with ``layout(spark)`` (what the columns mean),
``splits(spark)`` (lazy DataFrames per split; executors make the rows) and ``describe()``
(what goes into the manifest's ``source`` entry).
"""

from .fashion_mnist import FashionMnistSource
from .synthetic import SyntheticClassificationSource, SyntheticRegressionSource
from .tabular import TabularSource

__all__ = [
    "FashionMnistSource",
    "SyntheticClassificationSource",
    "SyntheticRegressionSource",
    "TabularSource",
]
