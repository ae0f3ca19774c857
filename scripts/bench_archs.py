#!/usr/bin/env python
"""Training speed and parameters of every network preset.

``python scripts/bench_archs.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.archs import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
