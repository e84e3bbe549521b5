"""Logging set-up: our progress lines on stderr, library noise a user cannot act on filtered."""

from __future__ import annotations

import logging
import os
import sys
import warnings

LOGGER_NAME = "sparkdl_tune"

# Warnings that say nothing a user can act on (pyarrow deprecations raised inside Petastorm,
# TensorFlow/Keras internals). Filtered by message, so our own warnings still show.
_NOISE = [
    r".*pyarrow\.(filesystem|hdfs|localfs).*",
    r".*is deprecated as of 2\.0\.0.*",
    r".*ParquetDataset.*",
    r".*use_legacy_dataset.*",
    r".*distutils Version classes are deprecated.*",
    r".*np\.bool8.*",
    r".*`product` is deprecated.*",
    r".*pkg_resources.*",
    r".*Running multiple iterations over make_petastorm_dataset.*",  # we cache in tf.data
    # Keras 3 warns at the normal end of every finite pass whose length tf.data cannot know
    # (our validation and test passes), and about fit's default shuffle on a dataset
    r".*Your input ran out of data; interrupting training.*",
    r".*`shuffle=True` was passed, but will be ignored.*",
    r".*Spark session is not provided\. Tags will not be inherited.*",  # pyspark 4 threads
    r".*is an experimental feature\. The interface can change in the future.*",  # optuna
]


def quiet_libraries() -> None:
    """Silence start-up banners and deprecation floods; safe to call many times, in workers too."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in ("py4j", "petastorm", "tensorflow", "absl", "mlflow", "hyperopt", "alembic",
                 "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (notebooks and test captures swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def setup(verbose: bool = False) -> logging.Logger:
    """Configure the package logger once: ``HH:MM:SS message`` lines on stderr."""
    quiet_libraries()
    log = logging.getLogger(LOGGER_NAME)
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    return log


def get(name: str = "") -> logging.Logger:
    """The package logger, or a child of it."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def number(value) -> str:
    """A metric value for people: 4 decimals in the usual range, its significant digits when
    tiny or huge (a regression loss of 5e-6 stays 5e-06, not 0.0000)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    return f"{v:.4f}" if v == 0 or 1e-3 <= abs(v) < 1e6 else f"{v:.4g}"
