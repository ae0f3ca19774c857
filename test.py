#!/usr/bin/env python
"""Evaluate trained weights: ``python test.py -opt options/test/example.yml`` (see ``--help``)."""
import sys

from framework.cli import run_main, test_main

if __name__ == "__main__":
    sys.exit(run_main(test_main))
