"""The package's errors: one root, a few families, each message one line a user can read.

Every exception class workbench defines derives from :class:`WorkbenchError`, so a caller
(the CLI, a notebook, the arena) catches one class and shows ``str(error)``. A family says
what went wrong, and :attr:`WorkbenchError.exit_code` what the CLI exits with: 2 for input
the user can correct (a flag, a file, a model name), 1 for a run that failed.

Classes that predate this module keep their builtin base too (``ValueError``,
``LookupError``) so that code catching those still works.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A failure with a one-line message that is safe to show a user."""

    exit_code: int = 1
    """What the CLI exits with: 2 bad input, 1 a run that failed."""


class InputError(WorkbenchError, ValueError):
    """Input the user can correct: a flag, a prompt, a config, study or votes file."""

    exit_code = 2


class ModelError(InputError):
    """A model that cannot be used: unknown name, missing or corrupt file, unknown
    architecture."""


class HubError(WorkbenchError, RuntimeError):
    """The model hub refused, was unreachable, or sent something else than announced."""


class BackendError(WorkbenchError):
    """A model failed while loading or generating (engine, worker or server)."""


class ArenaError(WorkbenchError):
    """A blind-study request refused: unknown token, late or duplicate vote, storage."""


def one_line(error: BaseException) -> str:
    """``str(error)`` on one line (the first non-empty one), or the class name."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__
