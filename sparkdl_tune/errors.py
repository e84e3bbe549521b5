"""Exceptions that say what happens next.

``UserError`` subclasses are the user's to fix: the CLI prints their one-line message and exits
with code 2 before any training starts. ``TrialFailed`` fails one trial and the search goes on.
Anything else is a bug or an environment failure: exit code 1.

:func:`public` wraps the functions of the Python API so that an exception leaving them (in a
notebook's output, say) has its credentials redacted like the CLI's one line.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, TypeVar

_F = TypeVar("_F", bound=Callable)
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class SparkdlTuneError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = EXIT_FAILURE


class UserError(SparkdlTuneError):
    """Bad input or configuration; the message names the culprit and the fix."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(UserError):
    """A configuration file, override or search space is invalid."""


class DataError(UserError):
    """A source or prepared dataset is missing, unreadable or invalid."""


class TrialFailed(SparkdlTuneError):
    """One trial failed (exception, out of memory, NaN loss); the search records it and goes on."""


class FatalError(SparkdlTuneError):
    """The job cannot go on (for example every trial failed, or a worker died)."""


def redact(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://***@host`` anywhere in ``text``."""
    return _USERINFO.sub("***@", text)


def public(fn: _F) -> _F:
    """Redact credentials in every exception that leaves ``fn``, and in its causes.

    The exception keeps its type, attributes (``exit_code``) and traceback: its message is
    rewritten in place. One whose message cannot be rewritten (its ``__str__`` reads other
    fields) is replaced by a :class:`FatalError` naming its type, without the chain.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _redact_chain(exc):
                raise
            raise FatalError(f"{type(exc).__name__}: {redact(_text(exc))}") from None

    return wrapper  # type: ignore[return-value]


def _redact_chain(exc: BaseException) -> bool:
    """Redact ``exc`` and the exceptions it was raised from; False if one still shows a secret
    (then ``exc`` itself must not travel on)."""
    seen: set[int] = set()
    clean = True
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        clean = _redact_one(exc) and clean
        exc = exc.__cause__ or exc.__context__
    return clean


def _redact_one(exc: BaseException) -> bool:
    text = _text(exc)
    if redact(text) == text and not _secret_in_notes(exc):
        return True
    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    if _text(exc) != redact(_text(exc)):  # the secret was in an argument that is no string
        exc.args = (redact(text),)
    message = getattr(exc, "message", None)
    if isinstance(message, str):  # MLflow's exceptions print .message
        try:
            exc.message = redact(message)
        except AttributeError:
            pass
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [redact(n) if isinstance(n, str) else n for n in notes]
    text = _text(exc)
    return redact(text) == text


def _secret_in_notes(exc: BaseException) -> bool:
    notes = getattr(exc, "__notes__", None) or []
    return any(isinstance(n, str) and redact(n) != n for n in notes)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ shows nothing, so it leaks nothing
        return ""
