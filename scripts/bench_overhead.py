#!/usr/bin/env python
"""Per-iteration cost of the framework's training loop against a bare PyTorch loop.

``python scripts/bench_overhead.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.overhead import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
