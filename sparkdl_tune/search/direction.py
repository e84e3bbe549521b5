"""Which way a metric improves, by its name: a leaf both the tuner and the report read.

Kept apart from :mod:`sparkdl_tune.search.tuner` so that reading a finished search (the report)
needs no tuner import, and the tuner's import of the report makes no circle. No imports.
"""

LOWER_IS_BETTER = ("loss", "mae", "mse", "error")  # in a metric's name


def mode_of(metric: str) -> str:
    """``min`` for a loss or an error, else ``max`` (``search.mode`` overrides it)."""
    return "min" if any(w in metric for w in LOWER_IS_BETTER) else "max"
