"""The two ways a checkpoint goes wrong for the user: a file that cannot be used, a save that cannot be written."""
from __future__ import annotations

from ..errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be used (missing, corrupt, wrong kind, unsafe); one line, exit code 2."""


class CheckpointWriteError(UserError):
    """A save that failed (disk full, permissions); earlier checkpoints are untouched."""

