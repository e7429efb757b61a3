"""The ratings' errors: all in the :class:`~workbench.errors.InputError` family (exit 2)."""

from __future__ import annotations

from workbench.errors import InputError


class RatingsError(InputError):
    """Votes or settings the ratings cannot use (unknown anchor model, bad option)."""


class VotesFileError(RatingsError):
    """A votes file or frame is malformed; the message is one line naming row and column."""


class VotesFileNotFound(VotesFileError, FileNotFoundError):
    """No votes file at the path given (also a ``FileNotFoundError``)."""
