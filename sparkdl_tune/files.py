"""Small files and folders that readers see whole: written to a temporary name, then renamed.

A leaf both sides of the package use (the prepared dataset's manifest, a search's summary and
kept trial records, the report folder); it imports nothing of the package's.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import uuid


def write_json_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a small file so a reader sees the old content or the new, never half of it."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def replace_dir(new: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move the finished folder ``new`` to ``final`` in two renames, so a reader sees the old
    folder or the new one, never a half-written one; any previous ``final`` is removed after."""
    new, final = pathlib.Path(new), pathlib.Path(final)
    if not final.exists():
        os.replace(new, final)
        return
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
