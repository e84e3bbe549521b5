"""Exceptions that say what happens next.

``UserError`` subclasses are the user's to fix: the CLI prints their one-line message and exits
with code 2 before any training starts. ``TrialFailed`` fails one trial and the search goes on.
Anything else is a bug or an environment failure: exit code 1.
"""

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
