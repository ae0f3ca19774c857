#!/usr/bin/env python
"""What the comparison strips and the per-image table add to a validation.

``python scripts/bench_validation.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.validation import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
