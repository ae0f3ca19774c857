"""Command-line arguments the tools share."""
from __future__ import annotations

import argparse


def add_network_source(parser: argparse.ArgumentParser, *, when: str = "", default: str = "") -> None:
    """``-opt OPTIONS.yml`` or ``--arch TYPE KEY=VALUE ...``: which network weights are for
    (:func:`framework.inference.load_network`). ``when`` prefixes the help (``"with --onnx: "``), ``default``
    ends it (what happens with neither)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-opt", "--opt", metavar="OPTIONS.yml",
                        help=f"{when}the network is this options file's network_g (and scale)")
    source.add_argument("--arch", nargs="+", metavar=("TYPE", "KEY=VALUE"),
                        help=f"{when}the network as TYPE KEY=VALUE ..., e.g. --arch RRDBNet num_block=23 scale=4 "
                             f"(num_in_ch and num_out_ch default to 3){default}")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``--verbose``, which :func:`framework.cli.run_main` reads: every command run through it takes the flag."""
    parser.add_argument("--verbose", action="store_true",
                        help="with a user error, show its exception chain (the original cause and where it was "
                             "raised) before the one-line message; for reporting a bug in the framework")


def add_tail_arguments(parser: argparse.ArgumentParser, force_help: str) -> None:
    """``--set KEY.PATH=VALUE`` (as train.py), ``--force`` and ``--verbose``: what the tools that read a
    training options file and write files share."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override an option, as train.py --set")
    parser.add_argument("--force", action="store_true", help=force_help)
    add_verbose_argument(parser)
