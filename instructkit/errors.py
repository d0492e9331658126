"""Error types that the CLI turns into one-line messages instead of tracebacks.

Every data or configuration problem a user can cause must surface as one of these, with the
file, line/key and what was expected, so that `instructkit` never prints a bare traceback for
something the user can fix.
"""
from __future__ import annotations


class InstructkitError(Exception):
    """Base class: the message is shown to the user as-is, on one line."""

    exit_code = 2


class ConfigError(InstructkitError):
    """A pipeline YAML, CLI flag or operator option is wrong (names the file/key)."""


class DataError(InstructkitError):
    """Input data cannot be read at all (missing file, wrong format override, ...)."""


class InvariantError(InstructkitError):
    """An internal accounting check failed (e.g. read != written + rejected)."""

    exit_code = 3


class GateFailed(InstructkitError):
    """The quality gate rejected the dataset; the output went to quarantine."""

    exit_code = 4
