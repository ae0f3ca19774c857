"""Command-line entry points shared by train.py and test.py: arguments, options, and exit codes.

Exit codes: 0 success, 2 a user error (options, paths, files; one line per problem, no traceback),
1 an unexpected failure (with its traceback), 130 an aborted Ctrl-C.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
from typing import Callable, List, Optional, Sequence

from .errors import UserError
from .options import Options, load_options


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-opt", "--opt", required=True, metavar="FILE", help="YAML options file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one option (the value is parsed as YAML); repeatable, e.g. "
                             "--set train.total_iter=1000")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors too")
    return parser


def train_parser() -> argparse.ArgumentParser:
    parser = base_parser("Train a network from a YAML options file.")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume from this experiment's newest valid checkpoint (path.resume_path: auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    return parser


def run_main(main: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main`` and map what it raises to the exit codes above."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return main(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


def options_from_args(args: argparse.Namespace, *, require_train: bool) -> Options:
    overrides = list(args.overrides)
    if getattr(args, "auto_resume", False):
        overrides.append("path.resume_path=auto")
    return load_options(args.opt, overrides, require_train=require_train)


