#!/usr/bin/env python
"""Start-up and resume latency of train.py, to the first batch in hand.

``python scripts/bench_startup.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.startup import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
