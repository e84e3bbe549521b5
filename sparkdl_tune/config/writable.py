"""Can the package write where a setting says it will? Asked before Spark starts.

A search writes its journal, summary and report only after every trial and the retrain; a
folder that turns out to be a file there wastes the whole search and ends in a traceback. So
every entry point asks here first, for each local place it will write (output folders, the
data cache, the MLflow store, ``--summary``, a report folder), and a place that cannot be
written is a :class:`~sparkdl_tune.errors.ConfigError` naming the setting, the path and what is
wrong. Remote URLs (``hdfs://``, ``s3://``, ...) are left to their own clients. Nothing is
created here: the check only looks.
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import ConfigError


def local_path(url: str) -> Optional[str]:
    """``file:///a/b``, ``file:/a/b`` or ``a/b`` -> the local path; any other scheme -> ``None``."""
    if url.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(url).path) or "/"
    return None if "://" in url else url


def check_folder(setting: str, path: str, what: str = "folder") -> None:
    """Raise unless a folder can be created (or written into) at ``path``.

    Raises:
        ConfigError: ``path`` (or a folder above it) exists as a file, or the nearest
            existing folder may not be written; the message names ``setting`` and the fix.
    """
    _raise(setting, path, what, _problem(path, folder=True))


def check_file(setting: str, path: str, what: str = "file") -> None:
    """Raise unless a file can be created (or replaced) at ``path``."""
    _raise(setting, path, what, _problem(path, folder=False))


def _raise(setting: str, path: str, what: str, problem: Optional[tuple[str, str]]) -> None:
    if problem is None:
        return
    text, fix = problem
    raise ConfigError(f"{setting}: the {what} {path} cannot be written: {text}; {fix} or "
                      f"choose another {setting}")


def _problem(path: str, folder: bool) -> Optional[tuple[str, str]]:
    """What stops a write at ``path`` and how to fix it, or ``None`` when nothing does.

    Running as root, permission bits do not stop a write but a file where a folder is needed
    does, so both are asked about.
    """
    target = os.path.abspath(path)
    if os.path.exists(target):
        if folder and not os.path.isdir(target):
            return f"{target} exists as a file, not a folder", "move that file away"
        if not folder and os.path.isdir(target):
            return f"{target} is a folder, not a file", "move that folder away"
        where = target if folder else os.path.dirname(target)
        return _permission(where)
    parent = os.path.dirname(target)
    while not os.path.exists(parent) and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"its parent {parent} is a file, not a folder", "move that file away"
    return _permission(parent)


def _permission(folder: str) -> Optional[tuple[str, str]]:
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    return f"no write permission on {folder}", "make it writable"
