"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a bad option, a missing file, the wrong kind of checkpoint).
The entry points print its one-line message and exit with code 2, without a traceback; anything else is a bug
and keeps its traceback.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """A mistake in the user's input; the message is one line that names the file or key and the fix."""

    exit_code = 2


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if str(name).lower() in lowered:
            close = [lowered[str(name).lower()]]
    return f"; did you mean '{close[0]}'?" if close else ""
