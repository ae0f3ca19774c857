#!/usr/bin/env python
"""JPEG degradation speed, the batched torch codec against Pillow.

``python scripts/bench_jpeg.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.jpeg import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
