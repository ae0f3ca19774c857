"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a bad option, a missing file, the wrong kind of checkpoint).
The entry points print its one-line message and exit with code 2, without a traceback (``--verbose`` adds the
exception chain); anything else is a bug and keeps its traceback. A user error that stems from another
exception is raised ``from`` it, so the chain keeps the original cause.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional, Sequence


class UserError(Exception):
    """A mistake in the user's input; the message is one line that names the file or key and the fix."""

    exit_code = 2


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process (a DataLoader worker): the cause of
    the error re-raised here, so ``--verbose`` shows where the original was raised."""

    def __init__(self, formatted: str) -> None:
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self) -> str:
        return "\n" + self.formatted.rstrip()


def first_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The first line of an exception's message (its type's name when it has none; at most ``limit``
    characters), the part of a foreign exception that fits in a one-line error."""
    message = str(exc).strip()
    return message.splitlines()[0][:limit] if message else type(exc).__name__


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for a choice that ``name`` is a misspelling of, or an empty string.

    Only misspellings: a few letters typed wrong, left out, doubled or swapped (or another case), never a
    look-alike with another meaning (``calculate_niqe`` is not ``calculate_ssim``). Foreign names with a
    meaning of their own (``network_d``) are answered from :mod:`framework.basicsr_names` before this runs.
    """
    name = str(name)
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return f"; did you mean '{lowered[name.lower()]}'?"
    allowed = 1 if len(name) <= 5 else 2 if len(name) <= 12 else 3
    scored = sorted((edit_distance(name.lower(), c.lower()), c) for c in choices)
    if not scored or scored[0][0] > allowed:
        return ""
    best = scored[0][1]
    if len(name) <= 4 and len(best) == len(name) and sorted(best.lower()) != sorted(name.lower()):
        return ""  # one letter replaced in a short word is another word (gpu, cpu), not a typo
    return f"; did you mean '{best}'?"


def edit_distance(a: str, b: str) -> int:
    """Letters to insert, delete, replace or swap (adjacent) to turn ``a`` into ``b``."""
    previous2: list = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


class OptionError(UserError):
    """A user error that belongs to one option key (``path``: ``('train', 'optim_g')``), so option checks
    can report it at that key with file and line."""

    def __init__(self, path: tuple, detail: str) -> None:
        super().__init__(f"{'.'.join(map(str, path))}: {detail}")
        self.path = path
        self.detail = detail


def check_range(path: tuple, value: Sequence[float], low: float, high: Optional[float] = None) -> None:
    """An option that is a range ``[low, high]`` inside the bounds ``low`` (and ``high``): one message for all
    such keys (Real-ESRGAN's ``blur_sigma``, ``noise_range``, ``jpeg_range`` ...)."""
    if not (low <= value[0] <= value[1] and (high is None or value[1] <= high)):
        bounds = f"{low} <= low <= high" + (f" <= {high}" if high is not None else "")
        raise OptionError(path, f"{list(value)} is not a range [low, high] with {bounds}")


# How torch's optimizers name their arguments in errors ("Invalid learning rate: -0.001").
_ARGUMENT_WORDS = {"learning rate": "lr", "beta parameter": "betas", "epsilon value": "eps",
                   "weight_decay value": "weight_decay", "momentum value": "momentum", "nesterov": "nesterov"}


def locate_argument(detail: str, names: Iterable[str]) -> Optional[str]:
    """Which of ``names`` an error message is about: named literally, or in torch's words."""
    names = list(names)
    named = [n for n in names if re.search(rf"\b{re.escape(n)}\b", detail)]
    if len(named) == 1:
        return named[0]
    lowered = detail.lower()
    return next((arg for words, arg in _ARGUMENT_WORDS.items() if words in lowered and arg in names), None)


@contextmanager
def building(*path: str, args: Iterable[str] = ()) -> Iterator[None]:
    """Turn what a constructor raises about its arguments (ours: UserError; torch's: ValueError/TypeError,
    e.g. 'Invalid learning rate: -0.001') into an :class:`OptionError` at the key of the argument."""
    try:
        yield
    except OptionError:
        raise
    except (UserError, ValueError, TypeError) as exc:
        detail = first_line(exc)
        argument = locate_argument(detail, args)
        raise OptionError(tuple(path) + ((argument,) if argument else ()), detail) from exc
