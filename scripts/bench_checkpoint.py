#!/usr/bin/env python
"""How long a checkpoint save blocks the training loop, synchronous and asynchronous.

``python scripts/bench_checkpoint.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.checkpoint import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
