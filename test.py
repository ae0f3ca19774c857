#!/usr/bin/env python
"""Evaluate trained weights: ``python test.py -opt options/test/example.yml``."""
import sys
from typing import List

from framework.cli import base_parser, options_from_args, run_main


def main(argv: List[str]) -> int:
    parser = base_parser("Evaluate trained weights on the test sets of a YAML options file.")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the options, load the weights and data, report, and write nothing")
    args = parser.parse_args(argv)
    options = options_from_args(args, require_train=False)
    from framework.tester import run_test
    run_test(options, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
