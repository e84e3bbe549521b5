"""Seeded, partition-independent assignment of rows to train/validation/test."""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError

_BUCKETS = 1_000_000


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    for name, value in (("validation", validation_fraction), ("test", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"--{name}-fraction is {value}; use a number in [0, 1)")
    if validation_fraction + test_fraction >= 1.0:
        raise ConfigError(f"validation + test fractions are {validation_fraction + test_fraction:g}"
                          " (>= 1), leaving no training rows; lower them")


def assign_splits(df, key_cols, seed: int, validation_fraction: float, test_fraction: float):
    """Split ``df`` by a hash of ``key_cols`` and the seed: the same rows land in the same split
    whatever the partitioning. Returns ``{split: DataFrame}`` (lazy)."""
    from pyspark.sql import functions as F

    check_fractions(validation_fraction, test_fraction)
    h = F.pmod(F.xxhash64(*[F.col(c) for c in key_cols], F.lit(seed)), F.lit(_BUCKETS))
    v_end = int(round(validation_fraction * _BUCKETS))
    t_end = v_end + int(round(test_fraction * _BUCKETS))
    return {
        "train": df.where(h >= t_end),
        "validation": df.where(h < v_end),
        "test": df.where((h >= v_end) & (h < t_end)),
    }


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask picking ``round(len(labels) * fraction)`` rows, stratified by label.

    Deterministic in (labels, fraction, seed), so every executor computes the same mask.
    Per-class quotas use largest remainders, so the total is exact.
    """
    classes, counts = np.unique(labels, return_counts=True)
    total = int(round(len(labels) * fraction))
    exact = counts * fraction
    quota = np.floor(exact).astype(int)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: total - quota.sum()]] += 1
    mask = np.zeros(len(labels), dtype=bool)
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(labels == c)
        rng = np.random.default_rng([seed, int(c)])
        mask[rng.choice(idx, size=q, replace=False)] = True
    return mask
