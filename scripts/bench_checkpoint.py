#!/usr/bin/env python
"""Checkpoint pause, sync and async, against a raw torch.save: ``python scripts/bench_checkpoint.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.bench_checkpoint import main

if __name__ == "__main__":
    sys.exit(run_main(main))
