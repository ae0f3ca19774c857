"""The two ways a checkpoint goes wrong for the user: a file that cannot be used, a save that cannot be written."""
from __future__ import annotations

from ..errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be used (missing, corrupt, wrong kind, unsafe); one line, exit code 2."""


class CheckpointWriteError(UserError):
    """A save that failed (disk full, permissions); earlier checkpoints are untouched."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for a one-line error."""
    message = str(exc).strip()
    return message.splitlines()[0][:200] if message else type(exc).__name__
