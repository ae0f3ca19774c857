#!/usr/bin/env python
"""Decoder speed and loader throughput, folders against LMDB, and the example run's data wait.

``python scripts/bench_data.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.data import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
