"""Executor side: read rows of IDX files (the MNIST format), plain or gzipped. No pyspark."""

from __future__ import annotations

import gzip
import struct

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_header(path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and byte offset of the data in an IDX file."""
    with _open(path) as f:
        head = f.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
            raise ValueError(f"{path} is not an IDX file (bad magic number)")
        ndim = head[3]
        shape = struct.unpack(f">{ndim}i", f.read(4 * ndim))
    return tuple(shape), np.dtype(_DTYPES[head[2]]), 4 + 4 * ndim


def read_rows(path: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of an IDX file, each flattened to one vector (labels: scalars)."""
    shape, dtype, offset = read_header(path)
    stop = shape[0] if stop is None else min(stop, shape[0])
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    with _open(path) as f:
        f.seek(offset + start * row * dtype.itemsize)
        buf = f.read((stop - start) * row * dtype.itemsize)
    out = np.frombuffer(buf, dtype=dtype)
    return out.reshape(stop - start, row) if len(shape) > 1 else out
